"""The hooks of the step cycle that later mixins implement: DAG stages (``_workflow_dag``),
tasks fanned out (``_workflow_fanout``), ASYNC dispatch (``_workflow_async``) and child
workflows (``_workflow_children``). ``_workflow_step`` calls them; here they raise (``_stage``:
no stage)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruvon._workflow_checks import StepChecks
from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.models import WorkflowStatus
from ruvon.serialization import Encoded
from ruvon.steps import StepOutcome, StepRun

__all__ = ["StageMember", "StepHooks"]


@dataclass(frozen=True, slots=True)
class StageMember:
    """One step of a DAG stage: its function, run with the stage or dispatched with it."""

    step: CompiledStep
    call: CallSpec
    dispatched: bool


class StepHooks(StepChecks):
    """What the step cycle hands over to the mixins above it."""

    def _stage(self, step: CompiledStep) -> list[StageMember]:
        """The DAG stage ``step`` runs in (see ``_workflow_dag``); empty: it runs alone."""
        return []

    async def _run_stage(
        self, stage: list[StageMember], run: StepRun, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, bool]:
        """Run a DAG stage (see ``_workflow_dag``)."""
        raise NotImplementedError

    async def _start_child(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Start the child workflow the step asks for and wait for it (see
        ``_workflow_children``)."""
        raise NotImplementedError

    async def _send(
        self,
        step: CompiledStep,
        spec: CallSpec,
        token: str,
        run: StepRun,
        state: Any,
        state_json: Encoded,
    ) -> bool:
        """Send a committed dispatch of ``step`` to the execution provider (see
        ``_workflow_async``)."""
        raise NotImplementedError

    async def _fan_out(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Dispatch the tasks of a PARALLEL step one by one (see ``_workflow_fanout``)."""
        raise NotImplementedError

    async def _dispatch_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Send the step's function away (see ``_workflow_async``)."""
        raise NotImplementedError

    def _reporter(self, step_index: int, token: str) -> Any:
        """What a background task calls with its outcome (see ``_workflow_async``)."""
        raise NotImplementedError
