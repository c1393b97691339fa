"""STANDARD steps: run the function in-process, merge its result, follow a matching route."""

from __future__ import annotations

from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.definition.schema import StandardStep
from ruvon.models import (
    StartSubWorkflowDirective,
    WorkflowJumpDirective,
    WorkflowPauseDirective,
    WorkflowStatus,
)
from ruvon.steps.base import ChildSpec, RunnerBase, StepOutcome, StepRun, call_function

__all__ = ["StandardRunner", "outcome_of_directive"]


def outcome_of_directive(
    directive: WorkflowJumpDirective | WorkflowPauseDirective, wait: WorkflowStatus
) -> StepOutcome:
    """The outcome a jump or pause directive stands for."""
    if isinstance(directive, WorkflowJumpDirective):
        return StepOutcome(result=dict(directive.result or {}), jump_to=directive.target_step_name)
    return StepOutcome(
        result=dict(directive.result or {}), wait=wait, waiting_for=directive.waiting_for
    )


class StandardRunner(RunnerBase):
    """Runs a STANDARD step. Its routes, if any, are followed when one matches; when none
    matches the workflow goes on with the next step."""

    def stage_call(self, step: CompiledStep) -> CallSpec | None:
        """A plain STANDARD step joins a stage: one without routes, input model, retry policy,
        timeout or compensation, whose function the provider can call as it is. Any of those
        makes it run on its own, where the engine applies them."""
        definition = step.definition
        assert isinstance(definition, StandardStep)
        plain = (
            not definition.routes
            and step.input_model is None
            and definition.retry_policy is None
            and definition.timeout_seconds is None
            and step.compensate is None
        )
        return step.function if plain else None

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        assert step.function is not None  # the schema requires it
        definition = step.definition
        assert isinstance(definition, StandardStep)
        try:
            result = await call_function(step.function, step, run)
        except (WorkflowJumpDirective, WorkflowPauseDirective) as directive:
            return outcome_of_directive(directive, WorkflowStatus.PAUSED)
        except StartSubWorkflowDirective as directive:
            child = ChildSpec(
                directive.workflow_type,
                dict(directive.initial_data),
                owner_id=directive.owner_id,
                data_region=directive.data_region,
            )
            return StepOutcome(completes_step=False, spawn=child)
        return StepOutcome(result=result, routes=definition.routes)
