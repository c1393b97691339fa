"""From timings to costs: µs per PARALLEL task and per DAG stage, and the printed tables.

Every derived number is the median over the rounds of that round's difference (the two cases
compared run back to back in each round, so a slow moment of the machine hits both sides). The
``cpu_`` numbers are the same differences in this process's CPU time instead of wall-clock
time (on PostgreSQL they leave out the server and the waits).
"""

from __future__ import annotations

import statistics
from typing import Any

from w5.report import table

__all__ = ["dag_rows", "parallel_rows", "profile_text", "table"]

TARGET_US_PER_TASK = 50.0
"""The issue's budget for one PARALLEL task on the memory store, beyond the function itself."""

PARALLEL_COLUMNS = [
    ("backend", "backend", 0),
    ("provider", "provider", 0),
    ("tasks", "tasks", 0),
    ("parallel_us_per_wf", "PARALLEL us/wf", 1),
    ("standard_us_per_wf", "STANDARD us/wf", 1),
    ("us_per_task", "us/task beyond fn", 1),
    ("cpu_us_per_task", "CPU us/task", 1),
    ("function_us_per_call", "fn us/call", 2),
    ("target", "< 50 us/task", 0),
]
DAG_COLUMNS = [
    ("backend", "backend", 0),
    ("provider", "provider", 0),
    ("steps_in_stage", "K", 0),
    ("dag_us_per_wf", "DAG us/wf", 1),
    ("sequential_us_per_wf", "sequential us/wf", 1),
    ("start_join_us_per_wf", "Start->Join us/wf", 1),
    ("us_per_stage", "us/stage", 1),
    ("us_per_step_in_stage", "us/step in stage", 1),
    ("us_per_sequential_step", "us/sequential step", 1),
]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def paired(a: list[float], b: list[float], scale: float = 1.0) -> float:
    """The median over repeats of ``(a - b) / scale``."""
    return median([(x - y) / scale for x, y in zip(a, b, strict=True)])


def parallel_rows(
    label: dict[str, str],
    samples: dict[str, list[float]],
    cpu: dict[str, list[float]],
    task_counts: list[int],
    function_us: dict[int, float],
) -> list[dict[str, Any]]:
    """One row per N: the two workflows' µs, and their difference per task (the STANDARD
    baseline makes the same N function calls, so the difference is the engine's alone)."""
    rows = []
    for n in task_counts:
        par, std = samples[f"par-{n}"], samples[f"std-{n}"]
        per_task = paired(par, std, n)
        row: dict[str, Any] = {
            **label,
            "tasks": n,
            "parallel_us_per_wf": median(par),
            "standard_us_per_wf": median(std),
            "us_per_task": per_task,
            "cpu_us_per_task": paired(cpu[f"par-{n}"], cpu[f"std-{n}"], n),
            "function_us_per_call": round(function_us[n] / n, 3),
            "function_us_for_all_tasks": round(function_us[n], 2),
        }
        if label["backend"] == "memory":
            row["target"] = "met" if per_task < TARGET_US_PER_TASK else "NOT met"
        rows.append(row)
    if len(task_counts) > 1:
        low, high = min(task_counts), max(task_counts)
        extra = [
            ((p1 - s1) - (p0 - s0)) / (high - low)
            for p0, s0, p1, s1 in zip(
                samples[f"par-{low}"],
                samples[f"std-{low}"],
                samples[f"par-{high}"],
                samples[f"std-{high}"],
                strict=True,
            )
        ]
        for row in rows:
            row["marginal_us_per_task"] = median(extra)  # from N=low to N=high
    return rows


def dag_rows(
    label: dict[str, str],
    samples: dict[str, list[float]],
    cpu: dict[str, list[float]],
    stage_widths: list[int],
) -> list[dict[str, Any]]:
    """One row per K. The stage's cost is the DAG workflow's time minus Start -> Join's (so it
    holds the K functions, the dispatch, the merge and the stage's one commit); the
    sequential steps' cost is measured the same way, for comparison."""
    base = samples["seq-0"]
    rows = []
    for k in stage_widths:
        dag, seq = samples[f"dag-{k}"], samples[f"seq-{k}"]
        rows.append(
            {
                **label,
                "steps_in_stage": k,
                "dag_us_per_wf": median(dag),
                "sequential_us_per_wf": median(seq),
                "start_join_us_per_wf": median(base),
                "us_per_stage": paired(dag, base),
                "cpu_us_per_stage": paired(cpu[f"dag-{k}"], cpu["seq-0"]),
                "us_per_step_in_stage": paired(dag, base, k),
                "us_per_sequential_step": paired(seq, base, k),
                "dag_saves_us_per_wf": paired(seq, dag),
            }
        )
    if len(stage_widths) > 1:
        low, high = min(stage_widths), max(stage_widths)
        slope = paired(samples[f"dag-{high}"], samples[f"dag-{low}"], high - low)
        for row in rows:
            row["marginal_us_per_step_in_stage"] = slope  # from K=low to K=high
    return rows


def profile_text(profile: dict[str, Any], top: int) -> str:
    """The cProfile listings: profiled µs per task or workflow (cProfile slows everything
    down, calls of small functions most)."""
    unit = profile["unit"]
    lines = [
        f"cProfile of {profile['workflows']} {profile['case']} workflows on {profile['where']} "
        f"({profile['profiled_s']} s profiled): top {top}, in profiled us per {unit}"
    ]
    for order, title in (("tottime", "self"), ("cumulative", "cumulative")):
        lines.append(f"\nby {title} time")
        lines.append(f"{'calls/' + unit:>14} {'self us':>8} {'cum us':>8}  function")
        for row in profile[order][:top]:
            lines.append(
                f"{row['calls_per_task']:>14} {row['self_us_per_task']:>8.2f} "
                f"{row['cum_us_per_task']:>8.2f}  {row['function']}"
            )
    return "\n".join(lines)
