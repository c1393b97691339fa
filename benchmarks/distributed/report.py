"""The printed table of the distributed benchmark and a one-line progress report per case."""

from __future__ import annotations

import statistics
from typing import Any

import psutil
from w5.report import table

STEPS = 5

COLUMNS = [
    ("label", "case", 0),
    ("workers_text", "workers", 0),
    ("runs", "runs", 0),
    ("wf_per_s", "workflows/s", 1),
    ("p50_ms", "p50 ms", 1),
    ("p99_ms", "p99 ms", 1),
    ("step_rt_p50_ms", "step RT p50", 2),
    ("step_rt_p99_ms", "step RT p99", 2),
    ("broker_leg_p50_ms", "broker leg p50", 2),
    ("worker_task_p50_ms", "worker ms/step", 2),
    ("probe_step_rt_p50_ms", "alone: step RT", 2),
    ("probe_p50_ms", "alone: wf ms", 1),
    ("cpu_ms_per_step", "CPU ms/step", 2),
    ("workers_cpu_pct_of_one_core", "CPU workers %", 0),
    ("postgres_server_cpu_pct_of_one_core", "CPU PG %", 0),
    ("others_cpu_pct", "CPU others %", 0),
    ("verified", "verified", 0),
]
OURS = (
    "workers_cpu_pct_of_one_core",
    "process_cpu_pct_of_one_core",
    "postgres_server_cpu_pct_of_one_core",
    "redis_server_cpu_pct_of_one_core",
)

LEGEND = """\
workflows/s: measured workflows / (first start -> the poll that saw the last one finished).
p50/p99: workflow latency, created_at -> completed_at of the rows (STANDARD: the start call).
step RT: per step, STEP_DISPATCHED -> STEP_EXECUTED audit timestamps minus the recorded
  duration (the dispatch's commit, the send, the wait in the queue, the worker's claim, load,
  function and merge); broker leg: STEP_DISPATCHED -> the task row the worker writes on
  receipt; worker ms/step: that task row's created_at -> completed_at (claim, load, run,
  commit, dispatch of the next step, task row completed).
alone: the same workflow one at a time after the measured run (--probe workflows), p50.
CPU ms/step: CPU time of Ruvon's processes (the workers and the benchmark's) during the
  measured run, per step run; CPU %: of one core during the measured run (workers: all worker
  processes together; PG: every PostgreSQL server process; others: the machine's busy time
  less the benchmark's, the workers', PostgreSQL's and Redis's: whatever else ran).
With --repeat, every number is the median over the runs of the case."""


def row(result: dict[str, Any]) -> dict[str, Any]:
    """The table's view of one case's result."""
    if "error" in result:
        return {"label": result["label"], "workers_text": _workers(result), "verified": False}
    probe = result.get("probe") or {}
    cpu_s = (result.get("workers_cpu_s") or 0.0) + result["process_cpu_s"]
    machine = result["machine_cpu_busy_pct"] * (psutil.cpu_count() or 1)
    return {
        **result,
        "runs": 1,
        "cpu_ms_per_step": 1000 * cpu_s / (result["workflows"] * STEPS),
        "others_cpu_pct": max(0.0, machine - sum(result.get(key) or 0.0 for key in OURS)),
        "workers_text": _workers(result),
        "probe_step_rt_p50_ms": probe.get("step_rt_p50_ms"),
        "probe_p50_ms": probe.get("p50_ms"),
        "verified": result["verification"]["ok"],
    }


def _workers(result: dict[str, Any]) -> str:
    workers = result.get("workers")
    return f"{workers} x solo" if workers else "in-process"


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per case (kind and worker count, in the order first run): the median of each
    number over its successful runs; ``runs`` counts those."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["case"], result.get("workers")), []).append(result)
    rows = []
    for group in groups.values():
        done = [row(r) for r in group if "error" not in r]
        if not done:
            rows.append({**row(group[0]), "runs": 0})
            continue
        summary: dict[str, Any] = {
            "case": group[0]["case"],
            "label": group[0]["label"],
            "workers": group[0].get("workers"),
            "workers_text": _workers(group[0]),
            "runs": len(done),
            "failed_runs": len(group) - len(done),
            "verified": all(r["verified"] for r in done) and len(done) == len(group),
        }
        for key, _, _ in COLUMNS:
            values = [r[key] for r in done if isinstance(r.get(key), (int, float))]
            if key not in summary and values and not isinstance(values[0], bool):
                summary[key] = round(statistics.median(values), 3)
        rates = [r["wf_per_s"] for r in done]
        summary["wf_per_s_min"], summary["wf_per_s_max"] = min(rates), max(rates)
        rows.append(summary)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return table(rows, COLUMNS)


def progress(index: int, total: int, result: dict[str, Any]) -> str:
    head = f"[{index}/{total}] {result['label']}:"
    if "error" in result:
        return f"{head} FAILED\n    " + str(result["error"]).replace("\n", "\n    ")
    verified = "verified" if result["verification"]["ok"] else "VERIFICATION FAILED"
    parts = [
        f"{result['wf_per_s']:,.1f} wf/s",
        f"p50 {result['p50_ms']:,.1f} ms",
        f"p99 {result['p99_ms']:,.1f} ms",
    ]
    if result.get("step_rt_p50_ms") is not None:
        parts.append(
            f"step round trip p50 {result['step_rt_p50_ms']:.2f} ms, "
            f"p99 {result['step_rt_p99_ms']:.2f} ms"
        )
    if result.get("workers_cpu_pct_of_one_core") is not None:
        parts.append(f"workers CPU {result['workers_cpu_pct_of_one_core']:.0f}% of a core")
    parts.append(
        f"PostgreSQL CPU {result['postgres_server_cpu_pct_of_one_core']:.0f}%, "
        f"machine {result['machine_cpu_busy_pct']:.0f}% busy"
    )
    text = f"{head} " + ", ".join(parts) + f"; {verified}"
    if not result["verification"]["ok"]:
        first = result["verification"].get("first") or result["verification"].get("first_errors")
        text += "\n    " + "\n    ".join(first or [])
    problems = result.get("worker_log_problems") or []
    if problems:
        text += f"\n    worker log ({result['worker_log_problem_lines']} lines):\n      "
        text += "\n      ".join(problems[:5])
    return text
