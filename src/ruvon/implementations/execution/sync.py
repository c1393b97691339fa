"""Runs step functions in the calling process, on the event loop's thread."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
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

__all__ = ["SyncExecutionProvider", "SyncExecutor"]

logger = logging.getLogger("ruvon.execution")


class SyncExecutionProvider:
    """Runs every step now, in this process.

    Coroutine functions are awaited. Plain functions run inline (they are usually short and
    this is the cheapest way); pass ``run_sync_in_thread=True`` when your plain step functions
    block on I/O, so that other workflows on the same event loop keep running meanwhile.
    ASYNC steps run inline too: the workflow never waits in PENDING_ASYNC. The tasks of a
    PARALLEL step run one after another, in their declared order.
    """

    def __init__(self, *, run_sync_in_thread: bool = False) -> None:
        self.run_sync_in_thread = run_sync_in_thread

    async def initialize(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def execute_sync_step_function(
        self, func: StepFunction, state: Any, context: StepContext, **user_input: Any
    ) -> dict[str, Any]:
        if self.run_sync_in_thread:
            outcome = await self._call(func, state, context, user_input)
        else:
            # Inline, the common case: no helper call on every step.
            outcome = func(state, context, **user_input)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        return step_result(context.step_name, outcome)

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        return await self.execute_sync_step_function(func, state, context, **dict(task.user_input))

    async def dispatch_parallel_tasks(
        self,
        tasks: Sequence[ParallelTask],
        state: Any,
        context_factory: Callable[[ParallelTask], StepContext],
        *,
        timeout_seconds: float | None = None,
    ) -> list[ParallelOutcome]:
        """Run the tasks one after another, in declared order; each may run for
        ``timeout_seconds`` from its own start (see ``ExecutionProvider``)."""
        check_timeout(timeout_seconds)
        return [
            await run_parallel_task(task, state, context_factory, self._call, timeout_seconds)
            for task in tasks
        ]

    async def _call(
        self, func: StepFunction, state: Any, context: StepContext, kwargs: Mapping[str, Any]
    ) -> object:
        """Call ``func`` as this provider does and return what it returned (awaited)."""
        if self.run_sync_in_thread and not inspect.iscoroutinefunction(func):
            outcome = await asyncio.to_thread(func, state, context, **kwargs)
        else:
            outcome = func(state, context, **kwargs)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome


SyncExecutor = SyncExecutionProvider
