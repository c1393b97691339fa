"""DECISION steps: optionally run the function, then jump to the first route that matches."""

from __future__ import annotations

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import DecisionStep
from ruvon.models import WorkflowJumpDirective, WorkflowPauseDirective, WorkflowStatus
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun, call_function
from ruvon.steps.function import outcome_of_directive

__all__ = ["DecisionRunner"]


class DecisionRunner(RunnerBase):
    """Runs a DECISION step. No matching route (and no default) fails the workflow with
    ``NoRouteMatchedError``; a function may instead raise ``WorkflowJumpDirective``."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, DecisionStep)
        result: dict[str, object] = {}
        if step.function is not None:
            try:
                result = await call_function(step.function, step, run)
            except (WorkflowJumpDirective, WorkflowPauseDirective) as directive:
                return outcome_of_directive(directive, WorkflowStatus.PAUSED)
        return StepOutcome(result=dict(result), routes=definition.routes, routes_required=True)
