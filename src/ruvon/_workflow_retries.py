"""Durable retries: a step's failed attempts are committed with the run (the attempt count and
the time of the next attempt, in the progress record), so a crash between attempts neither
resets the count nor skips the backoff; a backoff longer than the builder's
``retry_park_after_seconds`` does not hold the process: the call returns, the run waits with
``Workflow.retry_at``, and the next ``next_step`` after that time (the worker's) runs the next
attempt."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ruvon.definition.compiled import CompiledStep
from ruvon.providers.persistence import AuditEvent, LogEntry
from ruvon.steps import RetryScheduled

if TYPE_CHECKING:
    from ruvon._workflow_core import WorkflowCore

__all__ = ["DurableRetries", "retry_due_at"]


def retry_due_at(entry: object) -> datetime | None:
    """The time of the next attempt in a progress ``retries`` entry."""
    if not isinstance(entry, dict) or not entry.get("next_at"):
        return None
    return datetime.fromisoformat(str(entry["next_at"]))


class DurableRetries:
    """The engine's :class:`~ruvon.steps.base.RetryLedger` for one workflow."""

    __slots__ = ("_workflow",)

    def __init__(self, workflow: WorkflowCore) -> None:
        self._workflow = workflow

    def attempts_made(self, step: CompiledStep) -> int:
        entry = self._workflow.progress.retries.get(step.name)
        return int(entry.get("attempts", 0)) if isinstance(entry, dict) else 0

    async def attempt_failed(
        self, step: CompiledStep, attempt: int, delay: float, error: Exception
    ) -> None:
        workflow = self._workflow
        next_at = datetime.now(timezone.utc) + timedelta(seconds=delay)
        park = workflow._services.retry_park_after_seconds
        parks = park is not None and delay >= park
        described = f"{type(error).__name__}: {error}"
        # The failed attempt's in-place changes are not kept: the committed state stands.
        state = workflow._rebuild_state(workflow._committed_state)
        await workflow._commit(
            workflow.status,
            state,
            workflow.current_step_index,
            workflow.metadata,
            [
                AuditEvent(
                    "STEP_RETRY_SCHEDULED",
                    step_name=step.name,
                    data={
                        "failed_attempt": attempt,
                        "next_attempt_at": next_at.isoformat(),
                        "error": described,
                    },
                )
            ],
            logs=[
                LogEntry(
                    "WARNING",
                    f"Step {step.name} failed (attempt {attempt}): {described}; "
                    f"next attempt at {next_at.isoformat()}",
                    step_name=step.name,
                )
            ],
            progress=workflow.progress.retry_scheduled(step.name, attempt, next_at.isoformat()),
            hold=not parks,  # the next attempt runs in this call unless the run waits for it
        )
        if parks:
            raise RetryScheduled(step.name, attempt + 1, next_at)
