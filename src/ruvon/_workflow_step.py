"""One step of a ``Workflow``: run the step kind's runner, check what it produced (result,
state), route, and commit the outcome with its audit entry; chained by ``automate_next``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ruvon._workflow_failure import FailurePath
from ruvon.dag import ready_steps, skipped_by_route
from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.definition.validate import END
from ruvon.errors import (
    InvalidInputError,
    JumpTargetError,
    NoRouteMatchedError,
    StateValidationError,
    StepNotImplementedError,
)
from ruvon.models import (
    WorkflowStatus,
    check_transition,
    normalize_status,
)
from ruvon.providers.persistence import (
    AuditEvent,
    MetricPoint,
)
from ruvon.serialization import jsonable
from ruvon.state import (
    check_storable,
    describe_errors,
    merge_state,
    settle_state,
    unmerged_keys,
)
from ruvon.steps import STEP_RUNNERS, StepOutcome, StepRun, StepRunner
from ruvon.steps.routing import choose_route

__all__ = ["StepCycle"]

logger = logging.getLogger("ruvon.workflow")

_warned_unmerged: set[tuple[str, str, str]] = set()
"""(workflow type, step, key) already reported as left out of the state: warned once."""


def _audit_input(validated: BaseModel | None, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The input of a call as the audit log keeps it. With an ``input_model`` it is the model's
    JSON dump, so ``SecretStr``/``SecretBytes`` fields are masked; without one, the values as
    given (anything the codec cannot store is kept as its ``repr``)."""
    if validated is not None:
        return validated.model_dump(mode="json")
    recorded: dict[str, Any] = {}
    for key, value in user_input.items():
        try:
            recorded[key] = jsonable(value)
        except TypeError:
            recorded[key] = repr(value)
    return recorded


class StepCycle(FailurePath):
    """Running the current step and committing its outcome."""

    async def _run_current(
        self, user_input: dict[str, Any], first: bool
    ) -> tuple[dict[str, Any] | None, bool]:
        """Run the current step; return its result (None if it only started waiting) and
        whether ``automate_next`` goes on to the next one."""
        steps = self._compiled.steps
        index = self.current_step_index
        resuming = normalize_status(self.status) if first and self.status.is_waiting else None
        if index >= len(steps):
            # A pause in the last step: resuming it completes the workflow.
            await self._finish_without_step(resuming)
            return {}, False
        step = steps[index]
        run = StepRun(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            state=self.state,
            user_input=user_input,
            first_in_call=first,
            resuming=resuming,
            validated_input=None,
            previous_step_result=self._last_result,
            parent_workflow_id=self.parent_execution_id,
            execution=self._execution,
            persistence=self._persistence,
            evaluator=self._evaluator,
            templates=self._templates,
            metadata=self.metadata,
            cursor=self.progress.loops.get(step.name),
        )
        if self._dag is not None and resuming is None:
            stage = self._stage(step)
            if stage:
                return await self._run_stage(stage, run, user_input)
        runner = STEP_RUNNERS.get(step.kind)
        # Invalid input changes nothing: it is refused before the step starts.
        validated = self._validate_input(step, runner, run) if first else None
        run.validated_input = validated
        logger.info("Starting step: %s", step.name)
        started = time.perf_counter()
        try:
            if runner is None:
                raise StepNotImplementedError(step.name, step.kind.value)
            outcome = await runner.run(step, run)
            state, state_dict = self._settle(step, outcome.result)
            target = self._route(step, outcome, state)
        except Exception as exc:
            await self._fail(step, exc, resuming, user_input)
            raise
        if outcome.dispatch is not None:
            return await self._dispatch_step(step, outcome, state, state_dict, run, resuming)
        duration_ms = (time.perf_counter() - started) * 1000.0
        recorded_input = _audit_input(validated, user_input) if first and user_input else None
        await self._complete_step(
            step,
            outcome,
            state,
            state_dict,
            target,
            resuming,
            duration_ms,
            user_input,
            recorded_input,
        )
        if outcome.cursor is not None:
            return outcome.result, True  # the step goes on with its next part
        go_on = self.status is WorkflowStatus.ACTIVE and step.definition.automate_next
        return (outcome.result if outcome.completes_step else None), go_on

    def _settle(self, step: CompiledStep, result: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The state after ``step`` returned ``result``, validated, with its JSON form.

        Fails the step (before anything is committed) if the result cannot be stored, if the
        merged state does not validate — in-place changes included — or if the state cannot
        be stored. Result keys the model ignores are reported once per step and key.
        """
        model = self.state_model
        try:
            if result:
                check_storable(step.name, result)
                state = merge_state(self.state, result, model)
                if model is not dict:
                    self._warn_unmerged(step, result)
            elif model is dict:
                state = self.state
            else:
                # Nothing returned, but the step may have changed the state in place.
                state = merge_state(self.state, {}, model)
        except ValidationError as exc:
            raise StateValidationError(
                describe_errors(exc), model=model.__name__, step_name=step.name
            ) from None
        return settle_state(state, model, step.name)

    def _warn_unmerged(self, step: CompiledStep, result: Mapping[str, Any]) -> None:
        for key in unmerged_keys(result, self.state_model):
            seen = (self.workflow_type, step.name, key)
            if seen in _warned_unmerged:
                continue
            _warned_unmerged.add(seen)
            logger.warning(
                "Step '%s' of %s returned key '%s', which %s does not have: it is kept in the "
                "step's result (returned, audited, previous_step_result) but not in the state",
                step.name,
                self.workflow_type,
                key,
                self.state_model.__name__,
            )

    def _validate_input(
        self, step: CompiledStep, runner: StepRunner | None, run: StepRun
    ) -> BaseModel | None:
        """The call's input checked against the step's ``required_input`` and ``input_model``
        (InvalidInputError, nothing changed), unless the step's kind defers it."""
        if runner is not None and runner.defers_input(step, run):
            return None  # the step will wait; its input is checked when it arrives
        definition = step.definition
        user_input = run.user_input
        # ``required_input`` holds with or without an input_model.
        missing = [key for key in definition.required_input if key not in user_input]
        if missing:
            raise InvalidInputError(step.name, f"missing required input {missing}")
        if step.input_model is None:
            return None
        try:
            return step.input_model.model_validate(dict(user_input))
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidInputError(step.name, detail) from None

    def _successor(self, step: CompiledStep) -> int:
        """Where the workflow goes after ``step`` completes without a jump: its ``next:``
        (END is past the last step), else the following step in the file."""
        follow = step.definition.next
        if follow is None:
            return step.index + 1
        if follow == END:
            return len(self._compiled.steps)
        return self._compiled.index_by_name[follow]

    def _next_in_graph(
        self, step: CompiledStep, outcome: StepOutcome, target: int | None
    ) -> tuple[int, list[str]]:
        """DAG mode: where the run goes after ``step`` completes (the first ready step in file
        order, or the route's or jump's target), and the steps a route choice left out."""
        assert self._dag is not None
        steps = self._compiled.steps
        chosen = steps[target].name if target is not None else None
        destinations = [route.destination for route in outcome.routes]
        done = self.progress.step_completed(step.name, outcome.result)
        skipped = skipped_by_route(steps, self._dag, done, destinations, chosen)
        after = done.step_completed(step.name, outcome.result, skipped)
        ready = ready_steps(steps, self._dag, after)
        if chosen is not None and (chosen in ready or outcome.jump_to is not None):
            return target, skipped  # type: ignore[return-value]
        if ready:
            return self._compiled.index_by_name[ready[0]], skipped
        return len(steps), skipped

    def _route(self, step: CompiledStep, outcome: StepOutcome, state: Any) -> int | None:
        """The index to continue at if the step jumps, else None."""
        target = outcome.jump_to
        if target is None and outcome.wait is None:
            target = choose_route(outcome.routes, state, self._evaluator)
            if target is None and outcome.routes_required:
                raise NoRouteMatchedError(
                    f"No route of DECISION step '{step.name}' matched and it has no default."
                )
        if target is None:
            return None
        index = self._compiled.step_index(target)
        if index is None:
            raise JumpTargetError(target)
        return index

    async def _complete_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_dict: dict[str, Any],
        target: int | None,
        resuming: WorkflowStatus | None,
        duration_ms: float,
        user_input: Mapping[str, Any],
        recorded_input: dict[str, Any] | None,
    ) -> None:
        steps = self._compiled.steps
        old_status = self.status
        skipped: list[str] = []
        metadata = self.metadata
        audit: list[AuditEvent] = []
        metrics: list[MetricPoint] = []
        if resuming is not None:
            metadata = self._end_wait(step, resuming, old_status, user_input, audit)
        if outcome.metadata:
            metadata = {**metadata, **outcome.metadata}
        audit.extend(outcome.audit)

        if outcome.cursor is not None:
            # Part of the step's work is done: commit it and stay on the step.
            await self._commit_part(step, outcome, state, state_dict, duration_ms, metadata, audit)
            return
        if outcome.wait is not None:
            status = outcome.wait
            # A paused step is done: resuming goes where it leads. A waiting human step is not.
            index = self._successor(step) if outcome.completes_step else step.index
            metadata = {**metadata, "waiting_for": outcome.waiting_for}
        elif self._dag is not None:
            index, skipped = self._next_in_graph(step, outcome, target)
            done = index >= len(steps)
            status = WorkflowStatus.COMPLETED if done else WorkflowStatus.ACTIVE
        else:
            status = WorkflowStatus.ACTIVE
            index = self._successor(step) if target is None else target
            if target is not None and target > step.index + 1:
                skipped = [s.name for s in steps[step.index + 1 : target]]
                previous = metadata.get("skipped_steps", [])
                metadata = {**metadata, "skipped_steps": [*previous, *skipped]}
            if index >= len(steps):
                status = WorkflowStatus.COMPLETED
        check_transition(WorkflowStatus.ACTIVE, status)

        if outcome.completes_step:
            data: dict[str, Any] = {"result": outcome.result, "duration_ms": round(duration_ms, 3)}
            if target is not None:
                data["jumped_to"] = steps[target].name
            if recorded_input is not None:
                data["input"] = recorded_input
            audit.append(
                AuditEvent(
                    "STEP_EXECUTED",
                    step_name=step.name,
                    data=data,
                    duration_ms=duration_ms,
                    user_id=self._actor,
                )
            )
            metrics.append(
                MetricPoint("step_duration_ms", duration_ms, unit="ms", step_name=step.name)
            )
        if status.is_waiting:
            audit.append(
                AuditEvent(
                    "WORKFLOW_PAUSED",
                    step_name=step.name,
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                    data={"waiting_for": outcome.waiting_for},
                    user_id=self._actor,
                )
            )
        elif status is WorkflowStatus.COMPLETED:
            audit.append(
                AuditEvent(
                    "WORKFLOW_COMPLETED",
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                )
            )
        stack = self.completed_steps_stack
        if self.saga_mode and outcome.completes_step and step.compensate is not None:
            stack = [*stack, {"step_index": step.index, "step_name": step.name}]
        progress = (
            self.progress.step_completed(step.name, outcome.result, skipped)
            if outcome.completes_step
            else self.progress
        )

        try:
            await self._commit(
                status,
                state,
                index,
                metadata,
                audit,
                metrics=metrics,
                stack=stack,
                completed=status is WorkflowStatus.COMPLETED,
                state_dict=state_dict,
                progress=progress,
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            raise
        await self._notify_step(
            step, outcome, old_status, resuming, target, duration_ms, user_input
        )

    def _stage(self, step: CompiledStep) -> list[tuple[CompiledStep, CallSpec]]:
        """The DAG stage ``step`` runs in (see ``_workflow_dag``); empty: it runs alone."""
        return []

    async def _run_stage(
        self,
        stage: list[tuple[CompiledStep, CallSpec]],
        run: StepRun,
        user_input: dict[str, Any],
    ) -> tuple[dict[str, Any] | None, bool]:
        """Run a DAG stage (see ``_workflow_dag``)."""
        raise NotImplementedError

    async def _dispatch_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_dict: dict[str, Any],
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Send the step's function away (see ``_workflow_async``)."""
        raise NotImplementedError

    async def _commit_part(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_dict: dict[str, Any],
        duration_ms: float,
        metadata: dict[str, Any],
        audit: list[AuditEvent],
    ) -> None:
        """Commit one part (a batch, an iteration) of a step that works in parts."""
        audit.append(
            AuditEvent(
                "STEP_PROGRESSED",
                step_name=step.name,
                data={"result": outcome.result, "cursor": outcome.cursor},
                duration_ms=duration_ms,
            )
        )
        metrics = [
            MetricPoint("step_part_duration_ms", duration_ms, unit="ms", step_name=step.name)
        ]
        try:
            await self._commit(
                WorkflowStatus.ACTIVE,
                state,
                step.index,
                metadata,
                audit,
                metrics=metrics,
                state_dict=state_dict,
                progress=self.progress.step_progressed(step.name, outcome.cursor),
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            raise
        await self._hub.emit(
            "on_step_progressed",
            workflow_id=self.id,
            step_name=step.name,
            result=outcome.result,
            cursor=outcome.cursor,
            duration_ms=duration_ms,
        )

    async def _notify_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        old_status: WorkflowStatus,
        resuming: WorkflowStatus | None,
        target: int | None,
        duration_ms: float,
        user_input: Mapping[str, Any],
    ) -> None:
        hub = self._hub
        if not hub.enabled:
            return
        if resuming is not None:
            await hub.resumed(self.id, step.name, old_status, user_input)
            old_status = WorkflowStatus.ACTIVE
        if outcome.completes_step:
            label = "PAUSED" if outcome.wait else ("JUMPED" if target is not None else "COMPLETED")
            await hub.step_executed(
                self.id, step.name, step.index, label, outcome.result, self.state, duration_ms
            )
        if self.status is not old_status:
            # A paused step has already advanced the pointer: name the step that paused.
            await self._notify_status(old_status, step.name if outcome.wait else None)

    async def _finish_without_step(self, resuming: WorkflowStatus | None) -> None:
        old = self.status
        if resuming is not None:
            check_transition(resuming, WorkflowStatus.ACTIVE)
        audit = [AuditEvent("WORKFLOW_COMPLETED", old_status=old.value, new_status="COMPLETED")]
        await self._commit(
            WorkflowStatus.COMPLETED,
            self.state,
            self.current_step_index,
            self.metadata,
            audit,
            completed=True,
        )
        await self._notify_status(old)
