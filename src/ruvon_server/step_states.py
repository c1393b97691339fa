"""Where each step of a run stands (``GET /workflow/{id}/steps``), for the graph of the web page
and for anyone asking "which steps ran, how long did they take".

Read from what is stored, nothing re-run: the run's definition snapshot gives the steps in file
order, its audit trail (oldest first) what happened to them, the run's status and current step
what happens now.

- ``done``: the step's last execution succeeded (``STEP_EXECUTED``); ``failed``: it raised
  (``STEP_FAILED``), or it is the current step of a failed run (a crashed worker, a failed
  child); ``running``: dispatched, progressing or scheduled for a retry, or the
  current step of a run that waits for a worker or a child.
- ``waiting``: the current step of a run that waits for input (``PAUSED``, ``WAITING_HUMAN``).
- ``cancelled``: the current step of a cancelled run.
- ``skipped``: the run went past it without running it (a route or ``next:`` led elsewhere):
  in a run that follows the file, a step before the current one; in a completed run, every
  step that never ran.
- ``pending``: not reached yet (or reset: a retry or jump back to an earlier step makes the
  steps from there on pending again; their earlier runs still count in ``attempts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ruvon import WorkflowStatus
from ruvon.providers.records import AuditEvent, WorkflowRecord

__all__ = ["StepRun", "StepStateName", "step_states"]

StepStateName = Literal["done", "running", "waiting", "failed", "skipped", "pending", "cancelled"]

_S = WorkflowStatus
_RAN = {"STEP_EXECUTED": "done", "STEP_FAILED": "failed"}
_BUSY = frozenset({"STEP_DISPATCHED", "STEP_PROGRESSED", "STEP_RETRY_SCHEDULED"})
_BACK = frozenset({"WORKFLOW_RETRIED", "WORKFLOW_JUMPED"})
_INPUT = frozenset({_S.PAUSED, _S.WAITING_HUMAN, _S.WAITING_HUMAN_INPUT})
_BLOCKED = frozenset({_S.PENDING_ASYNC, _S.PENDING_SUB_WORKFLOW, _S.WAITING_CHILD_HUMAN_INPUT})


@dataclass
class StepRun:
    """One step of a run: where it stands and what its executions took."""

    name: str
    index: int
    kind: str
    state: StepStateName = "pending"
    current: bool = False
    attempts: int = 0
    """How many times it ran to an end (succeeded or raised)."""
    duration_ms: float | None = None
    """Its last execution's."""
    total_duration_ms: float = 0.0
    finished_at: datetime | None = None
    error: str | None = None
    """Its last failure's, while it stands failed."""


def _error_text(event: AuditEvent) -> str | None:
    data = event.data or {}
    message = data.get("error")
    if not message:
        return None
    kind = data.get("error_type")
    return f"{kind}: {message}" if kind else str(message)


def step_states(
    record: WorkflowRecord,
    steps: Sequence[tuple[str, str]],
    audit: Sequence[AuditEvent],
    *,
    dag: bool = False,
) -> list[StepRun]:
    """Each of ``steps`` (name, kind — in file order) as the run left it; ``audit`` oldest
    first. ``dag``: steps run by their dependencies, so file order says nothing of skipping."""
    runs = [StepRun(name, index, kind) for index, (name, kind) in enumerate(steps)]
    by_name = {run.name: run for run in runs}
    for event in audit:
        run = by_name.get(event.step_name or "")
        if run is None:
            continue
        if event.event_type in _RAN:
            run.state = "done" if event.event_type == "STEP_EXECUTED" else "failed"
            run.attempts += 1
            run.finished_at = event.timestamp
            run.error = _error_text(event) if run.state == "failed" else None
            if event.duration_ms is not None:
                run.duration_ms = float(event.duration_ms)
                run.total_duration_ms += float(event.duration_ms)
        elif event.event_type in _BUSY:
            run.state = "running"
        elif event.event_type in _BACK:
            for later in runs[run.index :]:
                later.state = "pending"
    _place_current(record, runs, by_name, dag=dag)
    return runs


def _place_current(
    record: WorkflowRecord,
    runs: list[StepRun],
    by_name: Mapping[str, StepRun],
    *,
    dag: bool,
) -> None:
    status = WorkflowStatus(record.status)
    current = by_name.get(record.current_step or "")
    if current is not None and status is not _S.COMPLETED:
        current.current = True
        if status in _INPUT:
            current.state = "waiting"
        elif status is _S.CANCELLED:
            current.state = "cancelled"
        elif status in _BLOCKED:
            current.state = "running"
        elif status.is_terminal and current.state in ("pending", "running"):
            current.state = "failed"  # e.g. its worker crashed, or a child failed
    if dag:
        frontier = len(runs) if status is _S.COMPLETED else 0
    elif status is _S.COMPLETED or current is None:
        frontier = len(runs) if status.is_terminal else 0
    else:
        frontier = current.index
    for run in runs[:frontier]:
        if run.state == "pending":
            run.state = "skipped"
