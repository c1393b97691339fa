"""Machine facts, the derived columns (% of floor, ratio to DBOS) and the printed table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

import psutil

PACKAGES = ("ruvon-sdk", "pydantic", "orjson", "asyncpg", "dbos", "sqlalchemy", "psycopg", "psutil")
SUMMARIZED = (
    "wf_per_s",
    "p50_ms",
    "p99_ms",
    "rss_peak_mb",
    "rss_delta_mb",
    "commits_per_wf",
    "process_cpu_pct_of_one_core",
    "machine_cpu_busy_pct",
)
DBOS_PEER = {"postgres": "postgres", "sqlite": "sqlite", "sqlite-full": "sqlite"}
"""The DBOS backend a Ruvon backend is compared with (DBOS runs SQLite one way only)."""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fdatasync_us(samples: int = 100) -> float:
    """The median cost of writing and fdatasync-ing 4 KB in the temporary directory."""
    durations = []
    with tempfile.TemporaryFile() as handle:
        fd = handle.fileno()
        for _ in range(samples):
            started = time.perf_counter()
            os.write(fd, b"\0" * 4096)
            os.fdatasync(fd)
            durations.append(time.perf_counter() - started)
    return round(statistics.median(durations) * 1e6, 1)


def machine_facts(postgres: dict[str, Any] | None) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlite_version": sqlite3.sqlite_version,
        "postgres": postgres,
        "fdatasync_4k_us": fdatasync_us(),
        "packages": versions,
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (engine, backend): the median of each measure over the repeats, then the
    derived columns."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if "error" not in run:
            groups[(run["engine"], run["backend"])].append(run)
    floors = {
        backend: _median([r["commits_per_s"] for r in group])
        for (engine, backend), group in groups.items()
        if engine == "floor"
    }
    rows = []
    for (engine, backend), group in groups.items():
        if engine == "floor":
            continue
        row: dict[str, Any] = {"engine": engine, "backend": backend, "repeats": len(group)}
        for key in SUMMARIZED:
            row[key] = _median([r[key] for r in group])
        if len(group) > 1:
            rates = [r["wf_per_s"] for r in group]
            row["wf_per_s_min"], row["wf_per_s_max"] = min(rates), max(rates)
        row["verified"] = all(r["verification"]["ok"] for r in group)
        floor = floors.get(backend)
        if floor:
            row["floor_commits_per_s"] = floor
            row["pct_of_floor"] = round(100 * row["wf_per_s"] * row["commits_per_wf"] / floor, 1)
            row["wf_per_s_over_floor_div_6"] = round(row["wf_per_s"] / (floor / 6), 3)
        rows.append(row)
    dbos = {row["backend"]: row["wf_per_s"] for row in rows if row["engine"] == "dbos"}
    for row in rows:
        peer = DBOS_PEER.get(row["backend"])
        if row["engine"] == "ruvon" and peer in dbos and dbos[peer]:
            row["ratio_to_dbos"] = round(row["wf_per_s"] / dbos[peer], 2)
            row["dbos_peer"] = peer
    order = {"memory": 0, "sqlite": 1, "sqlite-full": 2, "postgres": 3}
    rows.sort(key=lambda r: (order.get(r["backend"], 9), r["engine"] != "ruvon"))
    return rows


def floor_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run.get("engine") == "floor" and "error" not in run:
            groups[run["backend"]].append(run)
    return [
        {
            "backend": backend,
            "method": group[0]["method"],
            "repeats": len(group),
            "commits_per_s": _median([r["commits_per_s"] for r in group]),
            "commit_p50_ms": _median([r["commit_p50_ms"] for r in group]),
            "commit_p99_ms": _median([r["commit_p99_ms"] for r in group]),
            "concurrency": group[0]["concurrency"],
            "commits": group[0]["commits"],
        }
        for backend, group in sorted(groups.items())
    ]


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, int]]) -> str:
    """A plain-text table; ``columns`` are (key, heading, digits)."""
    cells = [[heading for _, heading, _ in columns]]
    cells += [[_cell(row.get(key), digits) for key, _, digits in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]

    def render(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(cells[0]), rule, *(render(line) for line in cells[1:])])


RESULT_COLUMNS = [
    ("backend", "backend", 0),
    ("engine", "engine", 0),
    ("wf_per_s", "workflows/s", 1),
    ("p50_ms", "p50 ms", 2),
    ("p99_ms", "p99 ms", 2),
    ("rss_peak_mb", "peak RSS MB", 1),
    ("rss_delta_mb", "RSS delta MB", 1),
    ("commits_per_wf", "commits/wf", 2),
    ("pct_of_floor", "% of floor", 1),
    ("wf_per_s_over_floor_div_6", "wf/s / (floor/6)", 3),
    ("ratio_to_dbos", "x DBOS", 2),
    ("process_cpu_pct_of_one_core", "CPU % (proc)", 0),
    ("verified", "verified", 0),
]
FLOOR_COLUMNS = [
    ("backend", "floor", 0),
    ("method", "method", 0),
    ("commits_per_s", "commits/s", 1),
    ("commit_p50_ms", "p50 ms", 3),
    ("commit_p99_ms", "p99 ms", 3),
    ("concurrency", "in flight", 0),
]


def facts_text(facts: dict[str, Any]) -> str:
    pg = facts.get("postgres") or {}
    settings = ", ".join(f"{k}={v}" for k, v in sorted((pg.get("settings") or {}).items()))
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items() if v)
    return "\n".join(
        [
            f"CPU:        {facts['cpu']} ({facts['logical_cores']} logical cores, "
            f"{facts['physical_cores']} physical), RAM {facts['ram_gb']} GB",
            f"OS:         {facts['os']}",
            f"Python:     {facts['python']} ({facts['python_implementation']})",
            f"PostgreSQL: {pg.get('server_version', 'not reached')}"
            + (f" ({settings})" if settings else ""),
            f"SQLite:     {facts['sqlite_version']}",
            f"fdatasync:  {facts['fdatasync_4k_us']} us per 4 KB write (median)",
            f"Packages:   {packages}",
        ]
    )
