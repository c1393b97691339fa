"""ASYNC steps: the function runs through ``ExecutionProvider.dispatch_async_task`` — at once
(sync provider), in the background (thread pool) or on another machine (Celery). The workflow
waits in PENDING_ASYNC until the result is reported."""

from __future__ import annotations

from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.models import WorkflowStatus
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun

__all__ = ["AsyncRunner"]


class AsyncRunner(RunnerBase):
    """Asks the engine to dispatch the step's function; the step completes when its result
    comes back (``Workflow.complete_async_step``)."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        assert step.function is not None  # the schema requires it
        return StepOutcome(
            wait=WorkflowStatus.PENDING_ASYNC,
            completes_step=False,
            waiting_for=step.name,
            dispatch=step.function,
        )

    def stage_dispatch(self, step: CompiledStep) -> CallSpec | None:
        return step.function
