"""HUMAN_IN_LOOP steps: wait in WAITING_HUMAN until a person's input arrives, then run."""

from __future__ import annotations

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import HumanInLoopStep
from ruvon.models import WorkflowJumpDirective, WorkflowPauseDirective, WorkflowStatus
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun, call_function
from ruvon.steps.function import outcome_of_directive

__all__ = ["HumanInLoopRunner", "runs_now"]


def runs_now(step: HumanInLoopStep, run: StepRun) -> bool:
    """Whether the step has its input and runs (else the workflow waits).

    Only the step the caller asked for can take input: a human step reached through
    ``automate_next`` always waits, so input meant for one approval never answers the next.
    """
    if not run.first_in_call:
        return False
    if run.resuming is WorkflowStatus.WAITING_HUMAN:
        return True
    return bool(run.user_input) and not step.always_pause


class HumanInLoopRunner(RunnerBase):
    """Runs a HUMAN_IN_LOOP step: its function with the input, or, without a function, the
    input merged into the state."""

    def defers_input(self, step: CompiledStep, run: StepRun) -> bool:
        definition = step.definition
        assert isinstance(definition, HumanInLoopStep)
        return not runs_now(definition, run)

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, HumanInLoopStep)
        if not runs_now(definition, run):
            return StepOutcome(
                wait=WorkflowStatus.WAITING_HUMAN, completes_step=False, waiting_for=step.name
            )
        if step.function is None:
            return StepOutcome(result=dict(run.user_input), routes=definition.routes)
        try:
            result = await call_function(step.function, step, run)
        except (WorkflowJumpDirective, WorkflowPauseDirective) as directive:
            return outcome_of_directive(directive, WorkflowStatus.WAITING_HUMAN)
        return StepOutcome(result=result, routes=definition.routes)
