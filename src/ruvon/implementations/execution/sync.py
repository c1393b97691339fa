"""Runs step functions in the calling process, on the event loop's thread."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from ruvon.models import StepContext
from ruvon.providers.execution import AsyncTask, StepFunction, TaskDispatched, step_result

__all__ = ["SyncExecutionProvider", "SyncExecutor"]

logger = logging.getLogger("ruvon.execution")


class SyncExecutionProvider:
    """Runs every step now, in this process.

    Coroutine functions are awaited. Plain functions run inline (they are usually short and
    this is the cheapest way); pass ``run_sync_in_thread=True`` when your plain step functions
    block on I/O, so that other workflows on the same event loop keep running meanwhile.
    ASYNC steps run inline too: the workflow never waits in PENDING_ASYNC.
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
        if self.run_sync_in_thread and not inspect.iscoroutinefunction(func):
            outcome = await asyncio.to_thread(func, state, context, **user_input)
        else:
            outcome = func(state, context, **user_input)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return step_result(context.step_name, outcome)

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        return await self.execute_sync_step_function(func, state, context, **dict(task.user_input))


SyncExecutor = SyncExecutionProvider
