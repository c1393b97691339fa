"""One parallel task from start to :class:`ParallelOutcome`, shared by the execution providers.

A provider says *how* a function is called (inline, on a thread, on a pool); this module does
the rest the same way for all of them: the state copy, the context, the time limit, the result
check and turning an exception into the outcome's ``error``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ruvon.models import StepContext
from ruvon.providers.execution import (
    ParallelOutcome,
    ParallelTask,
    StepFunction,
    isolated_state,
    step_result,
)

__all__ = ["CallFunction", "check_timeout", "run_parallel_task"]

CallFunction = Callable[[StepFunction, Any, StepContext, Mapping[str, Any]], Awaitable[object]]
"""``call(func, state, context, kwargs)``: a provider's way of calling a function; returns
what the function returned (awaited if it was a coroutine)."""


def check_timeout(timeout_seconds: float | None) -> None:
    """Reject a time limit that is not a positive number of seconds (``None`` is no limit)."""
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive or None, got {timeout_seconds!r}")


async def run_parallel_task(
    task: ParallelTask,
    state: Any,
    context_factory: Callable[[ParallelTask], StepContext],
    call: CallFunction,
    timeout_seconds: float | None,
) -> ParallelOutcome:
    """Run one task through ``call`` and report its outcome; only cancellation propagates.

    The task gets its own copy of ``state`` and the context ``context_factory`` makes for it.
    With a time limit, a task still running at the deadline is cancelled (a function already
    running on a thread runs on, and what it returns is discarded); a plain function running
    inline cannot be interrupted, so when it returns after the deadline its result is discarded
    too. Either way the outcome is a ``TimeoutError``, on every provider alike.
    """
    started = time.perf_counter()

    async def attempt() -> ParallelOutcome:
        try:
            returned = await call(
                task.func, isolated_state(state), context_factory(task), task.kwargs
            )
            result = step_result(task.name, returned)
        except Exception as exc:
            return ParallelOutcome(task.name, None, exc, _elapsed_ms(started))
        return ParallelOutcome(task.name, result, None, _elapsed_ms(started))

    if timeout_seconds is None:
        return await attempt()
    try:
        outcome = await asyncio.wait_for(attempt(), timeout_seconds)
    except asyncio.TimeoutError:  # the builtin TimeoutError from Python 3.11 on
        return _timed_out(task, timeout_seconds, started)
    if outcome.duration_ms > timeout_seconds * 1000:
        return _timed_out(task, timeout_seconds, started)
    return outcome


def _timed_out(task: ParallelTask, timeout_seconds: float, started: float) -> ParallelOutcome:
    error = TimeoutError(f"Task '{task.name}' did not finish within {timeout_seconds} s")
    return ParallelOutcome(task.name, None, error, _elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
