"""PARALLEL tasks fanned out to workers (the execution provider's ``remote_parallel_tasks``).

The runner answers :class:`~ruvon.steps.parallel.FanOut` instead of running the batch. The
run is committed PENDING_ASYNC first — one commit: a ``STEP_DISPATCHED`` entry and a token per
task, the tasks in the progress record (``Progress.fan_out``) — and only then is each task sent
with ``dispatch_async_task``, so the caller is free at once and a fast worker always finds the
row. A worker runs one task (:meth:`FanOutSteps._run_task`, through ``run_dispatched``) and
reports it (:meth:`FanOutSteps._complete_task`, through ``complete_async_step``): each report
is committed under the row-version check as the task's outcome in the progress record, so
reports of several processes at once conflict and are retried on the reloaded row, never lost
nor applied twice. The report that finds every other task of the batch done merges them
(``steps.merging.fan_in``, like the in-process path) and commits the step — or its next
batch's part, after which the next batch is dispatched the same way — in the same commit as
its own outcome.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruvon._fanout_task import (
    DispatchedRun,
    bounded,
    recorded_outcome,
    stored_outcome,
)
from ruvon._workflow_dag import DagStages
from ruvon.definition.compiled import CompiledStep
from ruvon.errors import ConcurrencyConflictError
from ruvon.models import WorkflowStatus, check_transition
from ruvon.providers.execution import AsyncTask, TaskDispatched, isolated_state, step_result
from ruvon.providers.persistence import AuditEvent
from ruvon.serialization import Encoded
from ruvon.steps import StepOutcome, StepRun
from ruvon.steps.base import with_retries
from ruvon.steps.merging import fan_in
from ruvon.steps.parallel import FanOut, FanOutTask, find_task, task_context

__all__ = ["DispatchedRun", "FanOutSteps"]

logger = logging.getLogger("ruvon.workflow")


@dataclass(frozen=True, slots=True)
class _Applied:
    """A task's report was committed: whether the run goes on in this call (the step
    completed with ``automate_next``, or its next batch is due), and the error that failed the
    step if it did."""

    go_on: bool
    error: BaseException | None = None


class FanOutSteps(DagStages):
    """Dispatching the tasks of a PARALLEL step one by one and applying their reports."""

    # -- the caller: commit, then send ----------------------------------------------------

    async def _fan_out(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        """Commit the batch of ``outcome`` (a :class:`FanOut`) as dispatched, then send its
        tasks. Returns ``(None, False)`` while they run elsewhere; when the provider ran them
        all at once, what the call goes on with (the merged result, whether to go on), or the
        step's error raised (the failure is committed)."""
        assert isinstance(outcome, FanOut)
        sent = [(task, uuid.uuid4().hex) for task in outcome.tasks]
        audit: list[AuditEvent] = []
        metadata = self.metadata
        if resuming is not None:
            metadata = self._end_wait(step, resuming, self.status, run.user_input, audit)
        check_transition(WorkflowStatus.ACTIVE, WorkflowStatus.PENDING_ASYNC)
        audit.extend(
            AuditEvent(
                "STEP_DISPATCHED",
                step_name=step.name,
                old_status=WorkflowStatus.ACTIVE.value,
                new_status=WorkflowStatus.PENDING_ASYNC.value,
                data={"token": token, "task_name": task.name},
            )
            for task, token in sent
        )
        progress = self.progress.tasks_dispatched(
            step.name,
            uuid.uuid4().hex,
            [(task.name, token) for task, token in sent],
            next_cursor=outcome.next_cursor,
            at=time.time(),
        )
        # Committed before any task is sent: every report finds this row and its token.
        await self._commit(
            WorkflowStatus.PENDING_ASYNC,
            state,
            step.index,
            {**metadata, "waiting_for": step.name},
            audit,
            state_json=state_json,
            progress=progress,
        )
        settled: _Applied | None = None
        for task, token in sent:
            if self.status is not WorkflowStatus.PENDING_ASYNC:
                break  # settled meanwhile (defensive: only the last report settles it)
            applied = await self._send_task(step, task, token, run, state, state_json)
            if applied is not None:
                settled = applied
        if settled is not None and settled.error is not None:
            raise settled.error
        if settled is None or self.status is WorkflowStatus.PENDING_ASYNC:
            return None, False  # the reports arrive later, through complete_async_step
        return self._last_result, settled.go_on

    async def _send_task(
        self,
        step: CompiledStep,
        task: FanOutTask,
        token: str,
        run: StepRun,
        state: Any,
        state_json: Encoded,
    ) -> _Applied | None:
        """Send one committed task. Returns None when it runs elsewhere; when the provider ran
        it at once (a result, or an exception: the task's error), its report is applied here
        and what that came to is returned."""
        timeout = step.definition.timeout_seconds
        job = AsyncTask(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            step_name=step.name,
            step_index=step.index,
            function_path=task.function_path,
            state=state_json.decode(),
            expected_version=self.version,
            user_input=task.kwargs,
            data_region=self.data_region,
            token=token,
            parallel_task=task.name,
            timeout_seconds=timeout,
            queue=step.definition.queue or self.data_region,
            report=self._reporter(step.index, token),
        )
        func = bounded(task.func, task.name, timeout)
        started = time.perf_counter()
        error: BaseException | None = None
        returned: Any = None
        try:
            returned = await self._execution.dispatch_async_task(
                job, func, isolated_state(state), task_context(step, run, task)
            )
        except Exception as exc:
            error = exc
        if isinstance(returned, TaskDispatched):
            return None
        seconds = time.perf_counter() - started
        return await self._record_retrying(step, token, returned, error, seconds)

    # -- the worker: run one task ---------------------------------------------------------

    def _fanned_out(self, step_index: int) -> CompiledStep | None:
        """The step at ``step_index`` if its tasks were dispatched one by one (a record of
        them is kept while it waits for them)."""
        steps = self._compiled.steps
        if not 0 <= step_index < len(steps):
            return None
        step = steps[step_index]
        return step if step.name in self.progress.fan_out else None

    def _waiting_task(self, step: CompiledStep, token: str) -> str | None:
        """The name of the task dispatched with ``token`` if the run still waits for it."""
        entry = self.progress.fan_out.get(step.name)
        if self.status is not WorkflowStatus.PENDING_ASYNC or entry is None:
            return None
        for name, task_token in entry["tasks"]:
            if task_token == token:
                return None if name in entry["done"] else str(name)
        return None

    async def _run_task(
        self, step: CompiledStep, token: str, user_input: Mapping[str, Any] | None
    ) -> DispatchedRun | None:
        """Run the task dispatched with ``token`` here (``run_dispatched``): its function on
        a copy of the committed state, with its own context and ``user_input`` (the task's
        keyword arguments as sent; ``None``: made again from the state) as keyword arguments,
        under a heartbeat, the step's ``timeout_seconds`` (a ``TimeoutError`` after it) and
        ``retry_policy``. None, running nothing, when the run does not wait for it any more."""
        name = self._waiting_task(step, token)
        if name is None:
            logger.info(
                "Dropped a delivery of a task of step %s of workflow %s: already reported or "
                "not dispatched with this token",
                step.name,
                self.id,
            )
            return None
        run = self._step_run({}, cursor=self.progress.loops.get(step.name))
        started = time.perf_counter()
        task = find_task(step, run, name)
        if task is None:  # the definition no longer has it: the task fails, nothing runs
            missing = LookupError(f"PARALLEL step '{step.name}' has no task '{name}'")
            return DispatchedRun(step.name, None, missing, 0.0)
        kwargs = dict(task.kwargs if user_input is None else user_input)
        func = bounded(task.func, task.name, step.definition.timeout_seconds)

        async def attempt(number: int) -> dict[str, Any]:
            returned = await self._execution.execute_sync_step_function(
                func, isolated_state(self.state), task_context(step, run, task, number), **kwargs
            )
            return step_result(task.name, returned)

        monitor = self._services.monitor
        running = monitor.enter(self._persistence, self.id, step.name) if monitor else None
        try:
            result = await with_retries(step, attempt)
            outcome = DispatchedRun(step.name, result, None, time.perf_counter() - started)
        except Exception as exc:
            outcome = DispatchedRun(step.name, None, exc, time.perf_counter() - started)
        finally:
            if running is not None and monitor is not None and monitor.leave(running):
                await monitor.forget(running)
        return outcome

    # -- the report -----------------------------------------------------------------------

    async def _complete_task(
        self,
        step: CompiledStep,
        token: str,
        result: dict[str, Any] | None,
        error: BaseException | None,
        seconds: float | None = None,
    ) -> bool:
        """Apply the report of one task (``complete_async_step``, under the lock); the run
        goes on in this call when the report completed the step (``automate_next``) or a
        batch (the next one is dispatched). False, changing nothing, for a stale or repeated
        report."""
        applied = await self._record_retrying(step, token, result, error, seconds)
        if applied is None:
            logger.warning(
                "Ignored a stale or repeated report of a task of step %s of workflow %s",
                step.name,
                self.id,
            )
            return False
        try:
            go_on = applied.go_on
            while go_on and self.status is WorkflowStatus.ACTIVE:
                _, go_on = await self._run_current({}, False)
        finally:
            await self._release_lease()
        return True

    async def _record_retrying(
        self,
        step: CompiledStep,
        token: str,
        returned: Any,
        error: BaseException | None,
        seconds: float | None,
    ) -> _Applied | None:
        """:meth:`_record_task`, tried again on the row read anew when another writer (a
        sibling's report) committed first; the token decides again each time. The last
        conflict is raised (``WorkflowBuilder.complete_async_step`` reloads and retries)."""
        for attempt in range(_REPORT_ATTEMPTS):
            try:
                return await self._record_task(step, token, returned, error, seconds)
            except ConcurrencyConflictError:
                if attempt == _REPORT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                await self._refresh()
        return None  # pragma: no cover - the loop returns or raises

    async def _record_task(
        self,
        step: CompiledStep,
        token: str,
        returned: Any,
        error: BaseException | None,
        seconds: float | None,
    ) -> _Applied | None:
        """Commit the outcome of the task dispatched with ``token``; the last one of its batch
        merges the batch and commits the step with it. None when the report does not apply."""
        name = self._waiting_task(step, token)
        if name is None:
            return None
        entry = self.progress.fan_out[step.name]
        if seconds is None:  # not measured by the reporter: the time since it was sent
            seconds = max(0.0, time.time() - float(entry["at"]))
        outcome = stored_outcome(name, returned, error, seconds)
        done = {**entry["done"], name: outcome}
        if len(done) < len(entry["tasks"]):
            data = {k: v for k, v in outcome.items() if k != "ms"}
            reported = AuditEvent(
                "PARALLEL_TASK_REPORTED",
                step_name=step.name,
                data={"task_name": name, "ok": "error" not in outcome, **data},
                duration_ms=outcome["ms"],
            )
            await self._commit(
                WorkflowStatus.PENDING_ASYNC,
                self.state,
                step.index,
                self.metadata,
                [reported],
                progress=self.progress.task_reported(step.name, name, outcome),
            )
            return _Applied(go_on=False)
        return await self._fan_in(step, entry, done)

    async def _fan_in(
        self, step: CompiledStep, entry: Mapping[str, Any], done: Mapping[str, Any]
    ) -> _Applied:
        """Merge the batch whose last outcome is in ``done`` and commit the step (completed,
        its part, or failed) with it. The run waits no more: ``waiting_for`` is dropped from
        the metadata that commit writes."""
        waiting, version = self.metadata, self.version
        self.metadata = {k: v for k, v in waiting.items() if k != "waiting_for"}
        try:
            return await self._merge_batch(step, entry, done)
        finally:
            if self.version == version:  # nothing was committed: the object stays as it was
                self.metadata = waiting

    async def _merge_batch(
        self, step: CompiledStep, entry: Mapping[str, Any], done: Mapping[str, Any]
    ) -> _Applied:
        """See :meth:`_fan_in`."""
        outcomes = [recorded_outcome(name, done[name]) for name, _ in entry["tasks"]]
        run = self._step_run({}, cursor=self.progress.loops.get(step.name))
        try:
            outcome = await fan_in(step, run, outcomes, entry.get("next"))
            state, state_json = self._settle(step, outcome.result)
            if step.definition.dynamic_injection is not None and outcome.completes_step:
                self._inject(step, state)
            target = self._route(step, outcome, state)
        except Exception as exc:
            self._drop_injection()
            await self._fail(step, exc, None, {})
            broken = self._broken
            if isinstance(broken, ConcurrencyConflictError):
                # The failure was not committed: the row moved on. Read it again and retry.
                self._broken = None
                raise broken from None
            return _Applied(go_on=False, error=exc)
        duration_ms = max(0.0, time.time() - float(entry["at"])) * 1000.0
        await self._complete_step(
            step, outcome, state, state_json, target, None, duration_ms, {}, None
        )
        if outcome.cursor is not None:
            return _Applied(go_on=True)  # the next batch is dispatched in this call
        go_on = self.status is WorkflowStatus.ACTIVE and step.definition.automate_next
        return _Applied(go_on=go_on)


_REPORT_ATTEMPTS = 5
"""How often one ``Workflow`` object tries a task's report against a row that the reports of
its siblings keep moving, reading it again in between."""
