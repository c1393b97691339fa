"""One step of a ``Workflow``: run the step kind's runner, check what it produced (result,
state), route, and commit the outcome with its audit entry; chained by ``automate_next``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from ruvon import observing
from ruvon._workflow_hooks import StepHooks
from ruvon._workflow_retries import retry_due_at
from ruvon.definition.compiled import CompiledStep
from ruvon.errors import (
    StepNotImplementedError,
    WorkflowStateError,
)
from ruvon.injection import INJECTED_KEY
from ruvon.models import (
    WorkflowStatus,
    check_transition,
    normalize_status,
)
from ruvon.observing import Notice
from ruvon.providers.persistence import (
    AuditEvent,
    MetricPoint,
)
from ruvon.serialization import Encoded, jsonable
from ruvon.steps import STEP_RUNNERS, RetryScheduled, StepOutcome, StepRun

__all__ = ["StepCycle"]

logger = logging.getLogger("ruvon.workflow")


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


class StepCycle(StepHooks):
    """Running the current step and committing its outcome."""

    def _step_run(
        self,
        user_input: dict[str, Any],
        first: bool = False,
        resuming: WorkflowStatus | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> StepRun:
        """What the current step runs with."""
        return StepRun(
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
            cursor=cursor,
            services=self._services,
            retries=self._retries,
        )

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
            await self._claim_lease()
            await self._finish_without_step(resuming)
            return {}, False
        step = steps[index]
        run = self._step_run(user_input, first, resuming, self.progress.loops.get(step.name))
        if self._dag is not None and resuming is None:
            stage = self._stage(step)
            if stage:
                await self._claim_lease()
                return await self._run_stage(stage, run, user_input)
        if self.progress.retries:
            await self._await_retry(step)
        runner = STEP_RUNNERS.get(step.kind)
        # Invalid input changes nothing: it is refused before the step starts.
        validated = self._validate_input(step, runner, run) if first else None
        run.validated_input = validated
        # The run is this call's before anything of the step runs (refusals above change
        # nothing and need no lease).
        if not self._lease.fresh():
            await self._claim_lease()
        logger.info("Starting step: %s", step.name)
        started = time.perf_counter()
        monitor = self._services.monitor
        running = (
            monitor.enter(self._persistence, self.id, step.name, self._lease) if monitor else None
        )
        try:
            if runner is None:
                raise StepNotImplementedError(step.name, step.kind.value)
            try:
                outcome = await runner.run(step, run)
            finally:
                if running is not None and monitor.leave(running):
                    await monitor.forget(running)
            state, state_json = self._settle(step, outcome.result)
            if step.definition.dynamic_injection is not None and outcome.completes_step:
                self._inject(step, state)  # before routing: targets may move
            target = self._route(step, outcome, state)
        except RetryScheduled as scheduled:
            # The failed attempt is committed; the next one is due later (Workflow.retry_at).
            logger.info("%s; the run waits for it", scheduled)
            self._drop_injection()
            return None, False
        except Exception as exc:
            self._drop_injection()
            await self._fail(step, exc, resuming, user_input)
            raise
        if outcome.dispatch is not None:
            return await self._dispatch_step(step, outcome, state, state_json, run, resuming)
        if outcome.spawn is not None:
            return await self._start_child(step, outcome, state, state_json, run, resuming)
        if outcome.wait is WorkflowStatus.PENDING_ASYNC:  # tasks to dispatch one by one
            return await self._fan_out(step, outcome, state, state_json, run, resuming)
        duration_ms = (time.perf_counter() - started) * 1000.0
        recorded_input = _audit_input(validated, user_input) if first and user_input else None
        await self._complete_step(
            step,
            outcome,
            state,
            state_json,
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

    async def _complete_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
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
        metrics.extend(outcome.metrics)
        injecting = self._injecting
        if injecting is not None:
            metadata = {**metadata, INJECTED_KEY: injecting.entries}
            audit.extend(injecting.audit)

        if outcome.cursor is not None:
            # Part of the step's work is done: commit it and stay on the step.
            await self._commit_part(step, outcome, state, state_json, duration_ms, metadata, audit)
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
            waiting = [name for name in self.progress.dispatch if name != step.name]
            if waiting:
                # Dispatched siblings of its stage have not reported: the run waits for them.
                status = WorkflowStatus.PENDING_ASYNC
                index = self._compiled.index_by_name[waiting[0]]
                metadata = {**metadata, "waiting_for": waiting[0]}
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

        notices = (
            self._step_notices(step, outcome, state, resuming, target, duration_ms, user_input)
            if self._hub.enabled
            else ()
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
                state_json=state_json,
                progress=progress,
                notices=notices,
                # A resumed wait was reported as ACTIVE; a paused step has moved the pointer on.
                since=WorkflowStatus.ACTIVE if resuming is not None else old_status,
                status_step=step.name if outcome.wait else None,
                # automate_next goes on in this call: keep the lease for the next step.
                hold=status is WorkflowStatus.ACTIVE and step.definition.automate_next,
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            self._drop_injection()
            raise
        self._injecting = None

    async def _await_retry(self, step: CompiledStep) -> None:
        """Before running a step between retries: wait for its next attempt when that is
        close, refuse (WorkflowStateError, nothing changed) when it is far."""
        due = retry_due_at(self.progress.retries.get(step.name))
        if due is None:
            return
        wait = (due - datetime.now(timezone.utc)).total_seconds()
        if wait <= 0:
            return
        park = self._services.retry_park_after_seconds
        if park is not None and wait >= park:
            raise WorkflowStateError(
                f"Workflow {self.id} waits until {due.isoformat()} to retry step "
                f"'{step.name}' (Workflow.retry_at); the worker runs it then."
            )
        await asyncio.sleep(wait)

    async def _commit_part(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
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
            MetricPoint("step_part_duration_ms", duration_ms, unit="ms", step_name=step.name),
            *outcome.metrics,
        ]
        notice: Notice = (
            "on_step_progressed",
            {
                "workflow_id": self.id,
                "step_name": step.name,
                "result": outcome.result,
                "cursor": outcome.cursor,
                "duration_ms": duration_ms,
            },
        )
        try:
            await self._commit(
                WorkflowStatus.ACTIVE,
                state,
                step.index,
                metadata,
                audit,
                metrics=metrics,
                state_json=state_json,
                progress=self.progress.step_progressed(step.name, outcome.cursor),
                notices=[notice],
                hold=True,  # the next part runs in this call
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            raise

    def _step_notices(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        resuming: WorkflowStatus | None,
        target: int | None,
        duration_ms: float,
        user_input: Mapping[str, Any],
    ) -> list[Notice]:
        """The observer events of a committed step: the wait it ended, the step's outcome."""
        notices: list[Notice] = []
        if resuming is not None:
            notices.extend(observing.resumed(self.id, step.name, resuming, user_input))
        if outcome.completes_step:
            label = "PAUSED" if outcome.wait else ("JUMPED" if target is not None else "COMPLETED")
            notices.append(
                observing.step_executed(
                    self.id, step.name, step.index, label, outcome.result, state, duration_ms
                )
            )
        return notices

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
