"""W5, the reference workload of DESIGN.md section 6, on every backend, next to the physical floor
and DBOS Transact.

    pip install -e '.[dev,bench]'
    python benchmarks/w5.py                                  # everything, 2,000 workflows
    python benchmarks/w5.py --backends memory,sqlite --no-dbos --workflows 500

W5: five sequential STANDARD steps with trivial bodies, ~5 KB of state (an order with 20 line
items), every step committed durably, 100 workflows in flight, 2,000 workflows after a warm-up
of 100. Each measurement runs in its own Python process (fresh store, clean RSS, one DBOS
instance per process); ``--repeat`` runs the whole sequence again and reports medians. The
table goes to stdout, everything (every run, the machine) to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # makes the `w5` package (steps, harness) importable

try:
    from w5 import report
    from w5.steps import state_json_bytes
except ImportError as missing:  # the bench extra (psutil, dbos) is not installed
    sys.exit(f"{missing}. Install the benchmark dependencies first: pip install -e '.[dev,bench]'")

ALL_BACKENDS = ("memory", "sqlite", "sqlite-full", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULT_MARK = "W5-RESULT "
CASE_TIMEOUT_S = 3600


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/w5.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workflows", type=int, default=2000, help="measured workflows per run")
    parser.add_argument("--concurrency", type=int, default=100, help="workflows in flight")
    parser.add_argument("--warmup", type=int, default=100, help="workflows run first, not counted")
    parser.add_argument(
        "--backends",
        default=",".join(ALL_BACKENDS),
        help=f"comma-separated, of {', '.join(ALL_BACKENDS)}",
    )
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS Transact")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw-commit floor")
    parser.add_argument(
        "--json", type=Path, default=None, help="default: benchmarks/results/w5-<timestamp>.json"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUVON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL server and database to use (fresh schemas/databases are made there)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="run the whole sequence N times")
    parser.add_argument(
        "--pool-size",
        type=int,
        default=50,
        help="PostgreSQL pool size of Ruvon, the floor and DBOS (Ruvon's default is 50)",
    )
    parser.add_argument(
        "--floor-commits", type=int, default=None, help="commits per floor run (default 6 x wf)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(ALL_BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; expected some of {list(ALL_BACKENDS)}")
    args.backend_list = backends
    if args.floor_commits is None:
        args.floor_commits = args.workflows * 6
    return args


# -- one measurement, in a child process -----------------------------------------------------


async def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    kind, backend = spec["kind"], spec["backend"]
    common = {
        "workflows": spec["workflows"],
        "concurrency": spec["concurrency"],
        "warmup": spec["warmup"],
        "postgres_url": spec["postgres_url"],
        "pool_size": spec["pool_size"],
    }
    if kind == "ruvon":
        from w5.workload import run_ruvon

        return await run_ruvon(backend, **common)
    if kind == "dbos":
        from w5.dbos_w5 import run_dbos

        return await run_dbos(backend, **common)
    if kind == "floor":
        from w5 import floor

        if backend == "postgres":
            return await floor.postgres_floor(
                spec["postgres_url"],
                commits=spec["floor_commits"],
                concurrency=spec["concurrency"],
                pool_size=spec["pool_size"],
            )
        synchronous = "FULL" if backend == "sqlite-full" else "NORMAL"
        return floor.sqlite_floor(synchronous=synchronous, commits=spec["floor_commits"])
    raise ValueError(f"unknown kind {kind!r}")


def child_main(spec_json: str) -> int:
    result = asyncio.run(run_spec(json.loads(spec_json)))
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its result, or the reason it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    label = {"kind": spec["kind"], "backend": spec["backend"]}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CASE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {**label, "engine": spec["kind"], "error": f"timed out after {CASE_TIMEOUT_S} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
    return {**label, "engine": spec["kind"], "error": "\n".join(tail) or f"exit {done.returncode}"}


# -- the whole run ---------------------------------------------------------------------------


def plan(args: argparse.Namespace, *, postgres_ok: bool, dbos_ok: bool) -> list[list[str]]:
    """(kind, backend) pairs of one repeat, engines alternating on each database."""
    backends = args.backend_list
    floor = not args.no_floor
    steps: list[list[str]] = []
    if "memory" in backends:
        steps.append(["ruvon", "memory"])
    if "postgres" in backends and postgres_ok:
        steps += [["floor", "postgres"]] if floor else []
        steps.append(["ruvon", "postgres"])
        steps += [["dbos", "postgres"]] if dbos_ok else []
    if "sqlite" in backends:
        steps += [["floor", "sqlite"]] if floor else []
        steps.append(["ruvon", "sqlite"])
    if dbos_ok and ("sqlite" in backends or "sqlite-full" in backends):
        steps.append(["dbos", "sqlite"])
    if "sqlite-full" in backends:
        steps += [["floor", "sqlite-full"]] if floor else []
        steps.append(["ruvon", "sqlite-full"])
    return steps


def progress(index: int, total: int, result: dict[str, Any]) -> str:
    head = f"[{index}/{total}] {result.get('engine')} {result.get('backend')}:"
    if "error" in result:
        return f"{head} FAILED\n    " + str(result["error"]).replace("\n", "\n    ")
    machine = (
        f"machine CPU {result['machine_cpu_busy_pct']:.0f}% busy, "
        f"load {result['loadavg_1m_at_start']:.1f} at start"
    )
    if result.get("backend") == "postgres":
        machine = (
            f"PostgreSQL server CPU {result['postgres_server_cpu_pct_of_one_core']:.0f}% "
            f"of a core, {machine}"
        )
    if result.get("engine") == "floor":
        return f"{head} {result['commits_per_s']:,.0f} commits/s ({result['method']}); {machine}"
    verified = "verified" if result["verification"]["ok"] else "VERIFICATION FAILED"
    return (
        f"{head} {result['wf_per_s']:,.1f} wf/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, {result['commits_per_wf']:.2f} commits/wf, "
        f"RSS {result['rss_peak_mb']:.0f} MB (+{result['rss_delta_mb']:.0f}), "
        f"process CPU {result['process_cpu_pct_of_one_core']:.0f}% of a core, {machine}; "
        f"{verified}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)

    started = datetime.now(timezone.utc)
    notes: list[str] = []
    postgres: dict[str, Any] | None = None
    if "postgres" in args.backend_list or not args.no_dbos:
        from w5 import pg

        try:
            postgres = asyncio.run(pg.server_facts(args.postgres_url))
        except Exception as exc:
            notes.append(
                f"PostgreSQL at {args.postgres_url} not reachable; its runs are skipped: {exc!r}"
            )
    dbos_ok = not args.no_dbos and importlib.util.find_spec("dbos") is not None
    if not args.no_dbos and not dbos_ok:
        notes.append("DBOS Transact is not installed (pip install -e '.[bench]'); skipped.")
    facts = report.machine_facts(postgres)
    state_bytes = state_json_bytes()

    print(
        f"W5: {args.workflows} workflows (+{args.warmup} warm-up), {args.concurrency} in "
        f"flight, 5 steps, state {state_bytes:,} bytes as JSON, repeat {args.repeat}"
    )
    print(report.facts_text(facts))
    for note in notes:
        print("NOTE:", note)

    steps = plan(args, postgres_ok=postgres is not None, dbos_ok=dbos_ok)
    runs: list[dict[str, Any]] = []
    total = len(steps) * args.repeat
    for repeat in range(args.repeat):
        order = steps if repeat % 2 == 0 else _swap_engines(steps)
        for kind, backend in order:
            spec = {
                "kind": kind,
                "backend": backend,
                "workflows": args.workflows,
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "postgres_url": args.postgres_url,
                "pool_size": args.pool_size,
                "floor_commits": args.floor_commits,
            }
            result = {**run_case(spec), "repeat": repeat + 1}
            runs.append(result)
            print(progress(len(runs), total, result), flush=True)
            if "error" in result and kind == "dbos":
                notes.append(f"DBOS on {backend} failed: {result['error'].splitlines()[-1]}")

    rows = report.summarize(runs)
    floors = report.floor_rows(runs)
    print()
    print(report.table(rows, report.RESULT_COLUMNS))
    if floors:
        print()
        print(report.table(floors, report.FLOOR_COLUMNS))
    print()
    print("commits/wf: Ruvon, create_workflow, claim_lease and commit_workflow calls counted;")
    print("DBOS, committed write transactions counted on its SQLAlchemy engine.")
    print("% of floor = wf/s x commits/wf / floor commits/s; x DBOS = wf/s / DBOS wf/s on the")
    print("same database (DBOS's SQLite: its default rollback journal, synchronous=FULL).")
    failed = [r for r in runs if "error" in r]
    for note in notes:
        print("NOTE:", note)

    path = args.json or HERE / "results" / f"w5-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "W5",
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": {
            "workflows": args.workflows,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "backends": args.backend_list,
            "repeat": args.repeat,
            "pool_size": args.pool_size,
            "floor_commits": args.floor_commits,
            "dbos": dbos_ok,
            "floor": not args.no_floor,
            "postgres_url": args.postgres_url,
            "state_json_bytes": state_bytes,
            "steps": 5,
        },
        "machine": facts,
        "results": rows,
        "floor": floors,
        "runs": runs,
        "notes": notes,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {path}")
    unverified = [r for r in runs if "verification" in r and not r["verification"]["ok"]]
    return 1 if unverified or any(r["engine"] == "ruvon" for r in failed) else 0


def _swap_engines(steps: list[list[str]]) -> list[list[str]]:
    """The same steps with DBOS run before Ruvon on each database (every other repeat)."""
    swapped = list(steps)
    for i in range(len(swapped) - 1):
        if swapped[i][0] == "ruvon" and swapped[i + 1][0] == "dbos":
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    return swapped


if __name__ == "__main__":
    sys.exit(main())
