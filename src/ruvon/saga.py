"""Compensation (decision 10): what a saga's rollback undoes, and running one compensation.

When a step fails in saga mode, the compensate functions of the completed steps run newest
first; a failing one is recorded and does not stop the rollback. This module holds the parts
without side effects on the store: which stack entries a rollback undoes
(:func:`rollback_stack`), the marker that says a run is rolling back (:class:`Rollback`), one
compensation run against the current state (:func:`run_compensation`) and the entries that
record it. Committing each step of the rollback is ``_workflow_rollback``'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ruvon.definition.compiled import CompiledStep, CompiledWorkflow
from ruvon.models import WorkflowStatus
from ruvon.observing import Notice
from ruvon.providers.execution import step_result
from ruvon.providers.persistence import (
    COMPENSATE,
    COMPENSATE_FAILED,
    AuditEvent,
    CompensationEntry,
    LogEntry,
)
from ruvon.serialization import Encoded
from ruvon.state import check_storable, merge_state, settle_state
from ruvon.steps.base import StepRun

__all__ = [
    "ROLLBACK_KEY",
    "Compensated",
    "Rollback",
    "compensation_started",
    "rollback_stack",
    "run_compensation",
]

logger = logging.getLogger("ruvon.saga")

ROLLBACK_KEY = "rollback"
"""The ``metadata`` key that marks a run whose rollback has started and not ended."""


@dataclass(frozen=True, slots=True)
class Rollback:
    """Why a run is rolling back, stored as ``metadata["rollback"]`` from the commit that starts
    the rollback until the one that ends it, so that any process can finish it.

    ``final_status`` is the status the run ends in (FAILED_ROLLED_BACK; a parent failed by its
    child may end FAILED_CHILD_WORKFLOW).
    """

    step: str
    """The step whose failure started the rollback."""
    error: str
    error_type: str
    final_status: WorkflowStatus = WorkflowStatus.FAILED_ROLLED_BACK

    @property
    def message(self) -> str:
        """``"ErrorType: message"``, the run's ``error_message``."""
        return f"{self.error_type}: {self.error}"

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "error": self.error,
            "error_type": self.error_type,
            "final_status": self.final_status.value,
        }

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> Rollback | None:
        """The marker in a run's metadata, or None when no rollback is in progress."""
        data = metadata.get(ROLLBACK_KEY)
        if not isinstance(data, Mapping):
            return None
        return cls(
            step=str(data.get("step", "")),
            error=str(data.get("error", "")),
            error_type=str(data.get("error_type", "Exception")),
            final_status=WorkflowStatus(
                data.get("final_status", WorkflowStatus.FAILED_ROLLED_BACK.value)
            ),
        )


def rollback_stack(
    compiled: CompiledWorkflow, stack: Sequence[Mapping[str, Any]], failed: CompiledStep
) -> list[dict[str, Any]]:
    """The saga stack a rollback works through (oldest first; it pops from the end): the
    entries whose step has a compensate function and, with ``compensate_on_failure: true``,
    the failed step itself on top. Empty: nothing to undo."""
    steps = compiled.steps
    entries = [
        dict(entry)
        for entry in stack
        if 0 <= int(entry["step_index"]) < len(steps)
        and steps[int(entry["step_index"])].compensate is not None
    ]
    if failed.compensate is not None and failed.definition.compensate_on_failure:
        entries.append({"step_index": failed.index, "step_name": failed.name})
    return entries


@dataclass(frozen=True, slots=True)
class Compensated:
    """The outcome of one compensation: the state it leaves (unchanged if it failed), with its
    JSON form when it changed, and its result or error."""

    step: CompiledStep
    state: Any
    state_json: Encoded | None
    result: dict[str, Any] | None
    error: str | None

    def entries(
        self, state_before: Mapping[str, Any] | Encoded, actor: str | None
    ) -> tuple[list[AuditEvent], list[LogEntry], CompensationEntry]:
        """The audit entry, log lines and compensation-log entry that record it."""
        step = self.step
        if self.error is not None:
            data = {"error": self.error}
            audit = AuditEvent("COMPENSATION_FAILED", step_name=step.name, data=data)
            logs = [LogEntry("ERROR", f"Compensation failed: {self.error}", step_name=step.name)]
        else:
            audit = AuditEvent(
                "COMPENSATION_EXECUTED", step_name=step.name, data={"result": self.result}
            )
            logs = []
        before = state_before if isinstance(state_before, Encoded) else dict(state_before)
        entry = CompensationEntry(
            step_name=step.name,
            step_index=step.index,
            action_type=COMPENSATE if self.error is None else COMPENSATE_FAILED,
            action_result=self.result,
            error_message=self.error,
            executed_by=actor,
            state_before=before,
            state_after=before if self.state_json is None else self.state_json,
        )
        return [audit], logs, entry

    def notices(self, workflow_id: str) -> list[Notice]:
        """Its observer event (published once it is committed)."""
        return [
            (
                "on_compensation_completed",
                {
                    "workflow_id": workflow_id,
                    "step_name": self.step.name,
                    "step_index": self.step.index,
                    "success": self.error is None,
                    "error": self.error,
                    "result": self.result,
                },
            )
        ]


def compensation_started(workflow_id: str, step: CompiledStep) -> Notice:
    """The observer event of the compensation a commit made the next one to run."""
    return (
        "on_compensation_started",
        {"workflow_id": workflow_id, "step_name": step.name, "step_index": step.index},
    )


async def run_compensation(
    compiled: CompiledWorkflow, step: CompiledStep, state: Any, run: StepRun
) -> Compensated:
    """Run ``step``'s compensate function against the current ``state`` and merge its result.

    Every value returned is checked against the codec and the state model here, so recording
    the outcome cannot fail on it: a result that cannot be stored (or that leaves the state
    invalid) is a failed compensation (its side effect did happen) and stays out of the state.
    The caller discards whatever a failed compensation changed in place.
    """
    assert step.compensate is not None
    run.state = state
    context = run.context(step)
    try:
        kwargs = step.compensate.keyword_arguments({}, state)
        returned = await run.execution.execute_sync_step_function(
            step.compensate.func, state, context, **kwargs
        )
        result = step_result(step.name, returned)
        check_storable(step.name, result)
        merged = merge_state(state, result, compiled.state_model) if result else state
        settled, state_json = settle_state(merged, compiled.state_model, step.name)
    except (Exception, ValidationError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.error("Compensation of step %s failed: %s", step.name, error)
        return Compensated(step, state, None, None, error)
    return Compensated(step, settled, state_json, result, None)
