"""ASYNC completion: a step whose function runs elsewhere. The workflow is committed
PENDING_ASYNC with a dispatch token *before* the task is sent, so a fast worker can never
overtake that commit; the result comes back through :meth:`AsyncSteps.complete_async_step`,
which applies it once — a stale or repeated completion (wrong token, or the step already
completed) changes nothing. The tasks of a PARALLEL step sent one by one report through the
same two entry points (``run_dispatched``, ``complete_async_step``), by their own tokens
(``_workflow_fanout``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ruvon._workflow_fanout import DispatchedRun, FanOutSteps
from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.errors import ConcurrencyConflictError
from ruvon.models import WorkflowStatus, check_transition
from ruvon.providers.execution import AsyncTask, TaskDispatched, step_result
from ruvon.providers.persistence import AuditEvent
from ruvon.serialization import Encoded
from ruvon.steps import STEP_RUNNERS, StepOutcome, StepRun

__all__ = ["AsyncSteps", "DispatchedRun"]

logger = logging.getLogger("ruvon.workflow")


class AsyncSteps(FanOutSteps):
    """Dispatching a step's function and applying its reported result."""

    async def _dispatch_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        spec = outcome.dispatch
        assert spec is not None
        token = uuid.uuid4().hex
        old_status = self.status
        audit: list[AuditEvent] = []
        metadata = self.metadata
        if resuming is not None:
            metadata = self._end_wait(step, resuming, old_status, run.user_input, audit)
        check_transition(WorkflowStatus.ACTIVE, WorkflowStatus.PENDING_ASYNC)
        audit.append(
            AuditEvent(
                "STEP_DISPATCHED",
                step_name=step.name,
                old_status=WorkflowStatus.ACTIVE.value,
                new_status=WorkflowStatus.PENDING_ASYNC.value,
                data={"token": token},
            )
        )
        # Committed before the task is sent: the worker's report always finds this row.
        await self._commit(
            WorkflowStatus.PENDING_ASYNC,
            state,
            step.index,
            {**metadata, "waiting_for": step.name},
            audit,
            state_json=state_json,
            progress=self.progress.step_dispatched(step.name, token),
        )
        if not await self._send(step, spec, token, run, state, state_json):
            return None, False  # the result arrives later, through complete_async_step
        go_on = self.status is WorkflowStatus.ACTIVE and step.definition.automate_next
        return self._last_result, go_on

    async def _send(
        self,
        step: CompiledStep,
        spec: CallSpec,
        token: str,
        run: StepRun,
        state: Any,
        state_json: Encoded,
    ) -> bool:
        """Send the committed dispatch of ``step`` (``token``) to the execution provider.

        Returns False when the task runs elsewhere (its report comes through
        :meth:`complete_async_step`), True when the provider ran it at once and its outcome
        has been applied; raises the step's error when that outcome failed the run."""
        kwargs = spec.keyword_arguments(run.user_input, state)
        task = AsyncTask(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            step_name=step.name,
            step_index=step.index,
            function_path=str(getattr(step.definition, "function", "")),
            state=state_json.decode(),
            expected_version=self.version,
            user_input=kwargs,
            data_region=self.data_region,
            token=token,
            queue=step.definition.queue or self.data_region,
            report=self._reporter(step.index, token),
        )
        started = time.perf_counter()
        try:
            returned = await self._execution.dispatch_async_task(
                task, spec.func, state, run.context(step)
            )
        except Exception as exc:
            await self._apply_completion(step, token, None, exc, started)
            raise
        if isinstance(returned, TaskDispatched):
            monitor = self._services.monitor
            if monitor is not None:  # beats while it runs in the background (see _reporter)
                self._away[token] = monitor.enter(self._persistence, self.id, step.name)
            return False
        # Ran at once (the sync provider): complete the step in this call.
        error = await self._apply_completion(step, token, returned, None, started)
        if error is not None:
            raise error
        return True

    def _reporter(self, step_index: int, token: str) -> Any:
        """What a background task calls with its outcome. When another process has moved the
        run on meanwhile (a version conflict), the row is read again and the token decides
        again: a sibling's report still applies, a stale one is dropped."""

        async def report(
            result: dict[str, Any] | None = None, error: BaseException | None = None
        ) -> bool:
            running = self._away.pop(token, None)
            monitor = self._services.monitor
            if running is not None and monitor.leave(running):
                await monitor.forget(running)
            for _ in range(_REPORT_ATTEMPTS):
                try:
                    return await self.complete_async_step(
                        step_index, token, result=result, error=error
                    )
                except ConcurrencyConflictError:
                    async with self._lock:
                        await self._refresh()
            return False

        return report

    async def run_dispatched(
        self, step_index: int, token: str, user_input: Mapping[str, Any] | None = None
    ) -> DispatchedRun | None:
        """Run the function of a dispatched step here, in this process: what a remote worker
        does with a task it received (the report is :meth:`complete_async_step`, or
        ``WorkflowBuilder.run_dispatched_step`` for both).

        Returns None, running nothing, when the dispatch does not apply any more (the step was
        already applied, the token is stale, the run moved on): a redelivered or duplicated
        message is dropped before the function runs. The function gets the committed state
        and ``user_input`` (the keyword arguments sent with the task); a heartbeat is kept
        while it runs. Its exception is returned in the outcome, not raised.

        A token of one task of a PARALLEL step runs that task alone, on its own copy of the
        state and with its own context, bounded by the step's ``timeout_seconds`` (a
        ``TimeoutError`` after it) and retried by its ``retry_policy``."""
        fanned_out = self._fanned_out(step_index)
        if fanned_out is not None:
            return await self._run_task(fanned_out, token, user_input)
        step = self._dispatched(step_index, token)
        if step is None:
            return None
        runner = STEP_RUNNERS.get(step.kind)
        spec = runner.stage_dispatch(step) if runner is not None else None
        if spec is None:
            return None
        monitor = self._services.monitor
        running = monitor.enter(self._persistence, self.id, step.name) if monitor else None
        run = self._step_run(dict(user_input or {}))
        started = time.perf_counter()
        try:
            result = await self._execution.execute_sync_step_function(
                spec.func, self.state, run.context(step), **dict(user_input or {})
            )
            outcome = DispatchedRun(step.name, result, None, time.perf_counter() - started)
        except Exception as exc:
            outcome = DispatchedRun(step.name, None, exc, time.perf_counter() - started)
        finally:
            if running is not None and monitor is not None and monitor.leave(running):
                await monitor.forget(running)
        return outcome

    def _dispatched(self, step_index: int, token: str) -> CompiledStep | None:
        """The step dispatched with ``token`` at ``step_index`` if the run still waits for it."""
        steps = self._compiled.steps
        if not 0 <= step_index < len(steps):
            return None
        step = steps[step_index]
        if (
            self.status is WorkflowStatus.PENDING_ASYNC
            and self.progress.dispatch.get(step.name) == token
        ):
            return step
        logger.info(
            "Dropped a delivery of step %s of workflow %s: already applied or not dispatched "
            "with this token",
            step.name,
            self.id,
        )
        return None

    async def complete_async_step(
        self,
        step_index: int,
        token: str,
        *,
        result: dict[str, Any] | None = None,
        error: BaseException | None = None,
        duration_ms: float | None = None,
    ) -> bool:
        """Apply the reported outcome of a dispatched step: merge its result and go on (running
        the steps ``automate_next`` chains to it), or fail the step with ``error``.
        ``duration_ms``: how long the function ran where it ran (its ``step_duration_ms``);
        default: the time this call takes, which is only the merge.

        Returns False and changes nothing when the report is stale or repeated: the workflow
        is not waiting for this step with this token any more. The commit is conditioned on
        the row version this object holds, so a report racing another writer cannot apply
        twice either (``ConcurrencyConflictError``: load the workflow again and retry).

        A token of one task of a PARALLEL step records that task's outcome; the report that
        completes the set (or a batch) merges the tasks and commits the step with it.
        """
        async with self._lock:
            fanned_out = self._fanned_out(step_index)
            if fanned_out is not None:
                seconds = None if duration_ms is None else duration_ms / 1000.0
                return await self._complete_task(fanned_out, token, result, error, seconds)
            steps = self._compiled.steps
            if not 0 <= step_index < len(steps):
                return False
            step = steps[step_index]
            started = time.perf_counter() - (duration_ms or 0.0) / 1000.0
            failure = await self._apply_completion(step, token, result, error, started, check=True)
            if failure is _STALE:
                return False
            while self.status is WorkflowStatus.ACTIVE and failure is None:
                chained = self._compiled.steps[step_index].definition.automate_next
                if not chained:
                    break
                _, go_on = await self._run_current({}, False)
                if not go_on:
                    break
                step_index = self.current_step_index
            return True

    async def _apply_completion(
        self,
        step: CompiledStep,
        token: str,
        returned: Any,
        error: BaseException | None,
        started: float,
        *,
        check: bool = False,
    ) -> Any:
        """Complete (or fail) the dispatched ``step``. Returns the error that failed it, None
        when it completed, or ``_STALE`` (with ``check``) when the report does not apply."""
        # The token alone decides (it is unique per dispatch): several dispatched steps of a
        # DAG stage report independently, in any order, without rejecting each other.
        if check and not (
            self.status is WorkflowStatus.PENDING_ASYNC
            and self.progress.dispatch.get(step.name) == token
        ):
            logger.warning(
                "Ignored a stale or repeated completion of step %s of workflow %s",
                step.name,
                self.id,
            )
            return _STALE
        if error is None:
            try:
                result = step_result(step.name, returned)
                state, state_json = self._settle(step, result)
                outcome = StepOutcome(result=result)
                target = self._route(step, outcome, state)
            except Exception as exc:
                error = exc
        if error is not None:
            await self._fail(step, error, None, {})  # type: ignore[arg-type]
            return error
        duration_ms = (time.perf_counter() - started) * 1000.0
        await self._complete_step(
            step, outcome, state, state_json, target, None, duration_ms, {}, None
        )
        return None


_REPORT_ATTEMPTS = 3
"""How often an in-process report is tried against a row other writers keep moving."""

_STALE = object()
"""The answer of :meth:`AsyncSteps._apply_completion` to a report that does not apply."""
