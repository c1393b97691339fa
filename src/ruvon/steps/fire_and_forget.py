"""FIRE_AND_FORGET steps: start an independent workflow and go on at once.

The spawned run is not a child: it has no ``parent_execution_id`` (so nothing it does reaches
the spawning run), its ``metadata`` names the spawner (``spawned_by``, ``spawn_reason``), and
it runs on its own up to its first wait (in this call; a failure is logged and stays with the
spawned run). Its idempotency key is derived from the spawning run, step and the number of
times the step completed before, so a step that runs again after a crash spawns nothing new.

Result: ``{"spawned_workflow_id": ..., "message": ...}``, and the id appended to the state's
``spawned_workflows`` list when the state model has that field.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import FireAndForgetStep
from ruvon.errors import RuvonError
from ruvon.providers.services import StartRequest
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun
from ruvon.steps.sub_workflow import render_initial_data

__all__ = ["SPAWN_COUNT_KEY", "FireAndForgetRunner"]

logger = logging.getLogger("ruvon.steps")

SPAWN_COUNT_KEY = "spawn_counts"
"""Workflow metadata: step name -> how many times the FIRE_AND_FORGET step completed."""


def _has_spawned_list(state: Any) -> bool:
    if isinstance(state, BaseModel):
        return "spawned_workflows" in type(state).model_fields
    return isinstance(state, dict)


class FireAndForgetRunner(RunnerBase):
    """Starts the target workflow, runs it up to its first wait, and completes at once."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, FireAndForgetStep)
        starter = run.services.starter
        if starter is None:
            raise RuvonError(
                f"FIRE_AND_FORGET step '{step.name}' needs a workflow starter (workflows built "
                "by WorkflowBuilder have one)"
            )
        counts = dict(run.metadata.get(SPAWN_COUNT_KEY) or {})
        attempt = int(counts.get(step.name, 0)) + 1
        request = StartRequest(
            workflow_type=definition.target_workflow_type,
            initial_data=render_initial_data(step, run),
            idempotency_key=f"{run.workflow_id}:{step.name}:spawn:{attempt}",
            metadata={"spawned_by": run.workflow_id, "spawn_reason": step.name},
        )
        spawned = await starter.start_workflow_for(request)
        try:
            await spawned.run()
        except Exception as exc:  # the spawned run's failure is its own
            logger.warning(
                "Workflow %s spawned by %s (step %s) failed: %s: %s",
                spawned.id,
                run.workflow_id,
                step.name,
                type(exc).__name__,
                exc,
            )
        result: dict[str, Any] = {
            "spawned_workflow_id": spawned.id,
            "message": f"Spawned {definition.target_workflow_type} workflow {spawned.id}",
        }
        if _has_spawned_list(run.state):
            current = (
                run.state.get("spawned_workflows")
                if isinstance(run.state, dict)
                else run.state.spawned_workflows
            )
            result["spawned_workflows"] = [*(current or []), spawned.id]
        counts[step.name] = attempt
        return StepOutcome(result=result, metadata={SPAWN_COUNT_KEY: counts})
