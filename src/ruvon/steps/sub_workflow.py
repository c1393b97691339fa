"""SUB_WORKFLOW steps: start a child workflow (``target_workflow_type``, with
``initial_data_template`` rendered against the state) and wait for it. The engine creates the
child, parks the run in PENDING_SUB_WORKFLOW and drives the child (``_workflow_children``); the
step completes when the child does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import FireAndForgetStep, SubWorkflowStep
from ruvon.errors import TemplateError
from ruvon.steps.base import ChildSpec, RunnerBase, StepOutcome, StepRun

__all__ = ["SubWorkflowRunner", "render_initial_data"]


def render_initial_data(step: CompiledStep, run: StepRun) -> dict[str, Any]:
    """The step's ``initial_data_template`` rendered with ``state``, ``workflow_id`` and
    ``context``; ``ValueError`` naming the step when it does not render to a mapping."""
    definition = step.definition
    assert isinstance(definition, (SubWorkflowStep, FireAndForgetStep))
    values: dict[str, Any] = {
        "state": run.state,
        "workflow_id": run.workflow_id,
        "context": {
            "workflow_id": run.workflow_id,
            "workflow_type": run.workflow_type,
            "step_name": step.name,
        },
    }
    try:
        rendered = run.templates.render(definition.initial_data_template, values)
    except TemplateError as exc:
        raise TemplateError(
            f"{definition.type} step '{step.name}': initial_data_template: {exc}"
        ) from None
    if not isinstance(rendered, Mapping):
        raise ValueError(
            f"{definition.type} step '{step.name}': initial_data_template must render to a "
            f"mapping, got {type(rendered).__name__}"
        )
    return dict(rendered)


class SubWorkflowRunner(RunnerBase):
    """Asks the engine to start the child workflow and wait for it."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, SubWorkflowStep)
        child = ChildSpec(definition.target_workflow_type, render_initial_data(step, run))
        return StepOutcome(completes_step=False, spawn=child)
