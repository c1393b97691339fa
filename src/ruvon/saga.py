"""Compensation (decision 10): when a step fails in saga mode, the compensate functions of the
completed steps run in reverse order; each is recorded, and a failing one does not stop the
rollback."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from ruvon.definition.compiled import CompiledWorkflow
from ruvon.providers.execution import step_result
from ruvon.providers.persistence import AuditEvent
from ruvon.state import check_storable, merge_state, settle_state
from ruvon.steps.base import StepRun

__all__ = ["compensate"]

logger = logging.getLogger("ruvon.saga")


async def compensate(
    compiled: CompiledWorkflow,
    state: Any,
    stack: list[dict[str, Any]],
    run: StepRun,
    error: BaseException,
) -> tuple[Any, list[dict[str, Any]], list[AuditEvent], int]:
    """Run the compensations of ``stack`` (newest first) against the current state.

    Returns the state with the compensation results merged, the emptied stack, the audit
    entries to commit with the failure, and how many compensations ran (0: nothing to undo).
    Every value returned is checked against the codec here, so recording the rollback cannot
    fail on it: a result that cannot be stored is recorded as a failed compensation (its side
    effect did happen) and left out of the state.
    """
    runnable = [
        entry for entry in reversed(stack) if compiled.steps[int(entry["step_index"])].compensate
    ]
    if not runnable:
        return state, [], [], 0
    audit = [AuditEvent("COMPENSATION_STARTED", data={"error": str(error), "steps": len(runnable)})]
    for entry in runnable:
        step = compiled.steps[int(entry["step_index"])]
        assert step.compensate is not None
        run.state = state
        context = run.context(step)
        try:
            kwargs = step.compensate.keyword_arguments({}, state)
            result = await run.execution.execute_sync_step_function(
                step.compensate.func, state, context, **kwargs
            )
            result = step_result(step.name, result)
            check_storable(step.name, result)
            merged = merge_state(state, result, compiled.state_model) if result else state
            state, _ = settle_state(merged, compiled.state_model, step.name)
        except (Exception, ValidationError) as exc:
            logger.error("Compensation of step %s failed: %s", step.name, exc)
            audit.append(
                AuditEvent(
                    "COMPENSATION_FAILED",
                    step_name=step.name,
                    data={"error": f"{type(exc).__name__}: {exc}"},
                )
            )
            continue
        audit.append(
            AuditEvent("COMPENSATION_EXECUTED", step_name=step.name, data={"result": result})
        )
    audit.append(AuditEvent("COMPENSATION_COMPLETED"))
    return state, [], audit, len(runnable)
