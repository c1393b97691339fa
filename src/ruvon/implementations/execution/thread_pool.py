"""Runs plain step functions on a pool of threads, and the tasks of a PARALLEL step at once."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ruvon.implementations.execution._parallel import check_timeout, run_parallel_task
from ruvon.models import StepContext
from ruvon.providers.execution import (
    AsyncTask,
    ParallelOutcome,
    ParallelTask,
    StepFunction,
    TaskDispatched,
    step_result,
)

__all__ = ["THREAD_NAME_PREFIX", "ThreadPoolExecutionProvider"]

logger = logging.getLogger("ruvon.execution")

THREAD_NAME_PREFIX = "ruvon-step"
"""The pool's threads are named ``ruvon-step_0``, ``ruvon-step_1``, ..."""


class ThreadPoolExecutionProvider:
    """Runs plain step functions on a ``concurrent.futures.ThreadPoolExecutor``, in this
    process; coroutine functions run on the event loop.

    A plain function that blocks (on I/O, a lock, a slow library) holds one of the pool's
    threads instead of the event loop, so other workflows on the loop keep running meanwhile.
    The tasks of a PARALLEL step all start at once: plain ones on the pool's threads, coroutine
    ones as tasks on the loop. ``max_workers`` (default: ``concurrent.futures``' own,
    ``min(32, os.cpu_count() + 4)``) bounds how many plain functions run at the same time;
    the others wait for a free thread.

    ``initialize()`` creates the pool (a provider used before it creates it on first use) and
    ``close()`` shuts it down and joins its threads, after waiting for the functions they are
    still running. A closed provider can be initialized and used again.

    ASYNC steps run in the background: ``dispatch_async_task`` answers
    :class:`TaskDispatched` at once (the workflow waits in PENDING_ASYNC, the caller gets
    control back) and the function's result — or its exception — is reported through
    ``task.report`` when it finishes, which completes the step and runs the steps
    ``automate_next`` chains to it. ``close()`` waits for those first.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(
                f"max_workers must be at least 1 (or None for the default), got {max_workers!r}"
            )
        self.max_workers = max_workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._background: set[asyncio.Task[None]] = set()

    @property
    def executor(self) -> ThreadPoolExecutor | None:
        """The pool while initialized, else ``None``."""
        return self._executor

    async def initialize(self) -> None:
        """Create the pool. Idempotent."""
        self._pool()

    async def close(self) -> None:
        """Shut the pool down and join its threads (waiting for the functions still running
        on them). Idempotent; ``initialize()`` (or the next use) makes a new pool. ASYNC steps
        still running in the background are waited for first (and report their results)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            # Joining blocks: do it on another thread so that the event loop keeps running.
            await asyncio.to_thread(executor.shutdown, wait=True)

    async def execute_sync_step_function(
        self, func: StepFunction, state: Any, context: StepContext, **user_input: Any
    ) -> dict[str, Any]:
        outcome = await self._call(func, state, context, user_input)
        return step_result(context.step_name, outcome)

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        """Run the step in the background and report its outcome through ``task.report``; a
        task without ``report`` runs now and its result is returned."""
        if task.report is None:
            return await self.execute_sync_step_function(
                func, state, context, **dict(task.user_input)
            )
        background = asyncio.get_running_loop().create_task(
            self._run_and_report(task, func, state, context),
            name=f"ruvon-async-{task.workflow_id}-{task.step_name}",
        )
        self._background.add(background)
        background.add_done_callback(self._background.discard)
        return TaskDispatched(task_id=task.token or f"{task.workflow_id}:{task.step_name}")

    async def _run_and_report(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> None:
        assert task.report is not None
        try:
            result = await self.execute_sync_step_function(
                func, state, context, **dict(task.user_input)
            )
        except Exception as exc:
            outcome: dict[str, Any] = {"error": exc}
        else:
            outcome = {"result": result}
        try:
            await task.report(**outcome)
        except Exception:
            logger.exception(
                "Reporting the outcome of step %s of workflow %s failed",
                task.step_name,
                task.workflow_id,
            )

    async def dispatch_parallel_tasks(
        self,
        tasks: Sequence[ParallelTask],
        state: Any,
        context_factory: Callable[[ParallelTask], StepContext],
        *,
        timeout_seconds: float | None = None,
    ) -> list[ParallelOutcome]:
        """Start every task at once and wait for all of them; each may run for
        ``timeout_seconds`` from the call (see ``ExecutionProvider``). Cancelling the call
        cancels the tasks still running (a function already on a thread runs to its end)."""
        check_timeout(timeout_seconds)
        runs = [
            run_parallel_task(task, state, context_factory, self._call, timeout_seconds)
            for task in tasks
        ]
        return list(await asyncio.gather(*runs))

    async def _call(
        self, func: StepFunction, state: Any, context: StepContext, kwargs: Mapping[str, Any]
    ) -> object:
        """Call ``func``: a coroutine function on the loop, a plain one on the pool (with the
        caller's context variables). Returns what it returned (awaited)."""
        outcome: object
        if inspect.iscoroutinefunction(func):
            outcome = func(state, context, **kwargs)
        else:
            run = contextvars.copy_context().run
            call = functools.partial(run, func, state, context, **kwargs)
            outcome = await asyncio.get_running_loop().run_in_executor(self._pool(), call)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome

    def _pool(self) -> ThreadPoolExecutor:
        """The pool, created on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix=THREAD_NAME_PREFIX
                )
            return self._executor
