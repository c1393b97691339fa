"""The printed table of the recovery benchmark (the machine facts come from ``w5.report``)."""

from __future__ import annotations

from typing import Any

from w5.report import table

COLUMNS = [
    ("backend", "backend", 0),
    ("workflows", "workflows", 0),
    ("threshold_s", "threshold s", 2),
    ("scan_interval_s", "scan every s", 2),
    ("beat_age_at_kill_max_s", "beat age max s", 3),
    ("detected_first_s", "detect first s", 3),
    ("detected_all_s", "detect all s", 3),
    ("finish_s", "finish s", 3),
    ("total_s", "kill->done s", 3),
    ("committed_steps_before_kill", "committed before kill", 0),
    ("duplicated_committed_steps", "dup committed", 0),
    ("in_flight_reruns", "in-flight re-run", 0),
    ("duplicated_after_recovery", "dup after", 0),
    ("lost", "lost", 0),
    ("verified", "verified", 0),
]

LEGEND = """\
detect first/all: seconds from the SIGKILL until the scanner's recovery of the first/last workflow
  landed; about threshold - (age of the last heartbeat at the kill) + the wait for the next scan,
  so at most threshold + scan interval (+ the scan's own duration).
finish: from the last detection until the worker reported the last workflow COMPLETED.
committed before kill: steps whose commit landed before the kill (STEP_EXECUTED before
  ZOMBIE_DETECTED in the audit trail); dup committed: those whose effect happened again (must be 0).
in-flight re-run: the step interrupted by the kill (effect written, not committed) ran again:
  at-least-once, expected for every workflow.
dup after: a step that ran more than once after the recovery (must be 0).
lost: workflows not COMPLETED at the end (must be 0)."""


def rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per run; a failed run shows its backend and nothing else."""
    return [
        {**run, "verified": run.get("verification", {}).get("ok", False)}
        if "error" not in run
        else {"backend": run["backend"], "verified": False}
        for run in runs
    ]


def text(runs: list[dict[str, Any]]) -> str:
    return table(rows(runs), COLUMNS)


def failed(run: dict[str, Any]) -> bool:
    """A run that errored, lost or duplicated anything, or failed its checks."""
    return (
        "error" in run
        or bool(run.get("duplicated_committed_steps"))
        or bool(run.get("duplicated_after_recovery"))
        or bool(run.get("lost"))
        or not run.get("verification", {}).get("ok", False)
    )
