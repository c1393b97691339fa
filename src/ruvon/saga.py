"""Compensation (decision 10): when a step fails in saga mode, the compensate functions of the
completed steps run in reverse order; each is recorded, and a failing one does not stop the
rollback."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from ruvon.definition.compiled import CompiledWorkflow
from ruvon.providers.persistence import AuditEvent
from ruvon.state import merge_state
from ruvon.steps.base import StepRun

__all__ = ["compensate"]

logger = logging.getLogger("ruvon.saga")


async def compensate(
    compiled: CompiledWorkflow,
    state: Any,
    stack: list[dict[str, Any]],
    run: StepRun,
    error: BaseException,
) -> tuple[Any, list[dict[str, Any]], list[AuditEvent]]:
    """Run the compensations of ``stack`` (newest first) against the current state.

    Returns the state with the compensation results merged, the emptied stack, and the audit
    entries to commit with the failure.
    """
    audit = [AuditEvent("COMPENSATION_STARTED", data={"error": str(error), "steps": len(stack)})]
    for entry in reversed(stack):
        step = compiled.steps[int(entry["step_index"])]
        if step.compensate is None:
            continue
        run.state = state
        context = run.context(step)
        try:
            kwargs = step.compensate.keyword_arguments({}, state)
            result = await run.execution.execute_sync_step_function(
                step.compensate.func, state, context, **kwargs
            )
            if result:
                state = merge_state(state, result, compiled.state_model)
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
    return state, [], audit
