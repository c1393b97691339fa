"""Helpers of the execution-provider tests: contexts for parallel tasks, a short way to dispatch
them, and step functions that workflow files of these tests name by dotted path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ruvon.models import StepContext
from ruvon.providers.execution import ExecutionProvider, ParallelOutcome, ParallelTask

STEPS = "tests.execution.support"
"""This module, as workflow files name it."""

GUARD_SECONDS = 10.0
"""How long a barrier or an event waits before the test gives up: never reached when the code
works, it only turns a hang into a failure."""


def context_for(task: ParallelTask) -> StepContext:
    """The context a parallel task receives in these tests."""
    return StepContext(workflow_id="wf-parallel", step_name=task.name, workflow_type="Tests")


async def dispatch(
    provider: ExecutionProvider,
    *tasks: tuple[str, Callable[..., Any]],
    state: Any = None,
    timeout_seconds: float | None = None,
) -> list[ParallelOutcome]:
    """Dispatch ``(name, func)`` pairs as parallel tasks on ``provider``."""
    return await provider.dispatch_parallel_tasks(
        [ParallelTask(name, func) for name, func in tasks],
        {} if state is None else state,
        context_for,
        timeout_seconds=timeout_seconds,
    )


def by_name(outcomes: list[ParallelOutcome]) -> dict[str, ParallelOutcome]:
    """Outcomes keyed by task name."""
    return {outcome.name: outcome for outcome in outcomes}


# -- step functions of the workflow tests ---------------------------------------------------


def note_thread(state: Any, context: StepContext) -> dict[str, Any]:
    """A plain step: records the name of the thread it ran on."""
    return {"note": threading.current_thread().name}


async def greet_from_thread(state: Any, context: StepContext) -> dict[str, Any]:
    """A coroutine step: records the name of the thread it ran on."""
    return {"greeting": threading.current_thread().name}
