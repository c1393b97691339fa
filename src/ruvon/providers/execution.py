"""The execution contract: where and how a step function runs.

An execution provider never commits anything: it runs (or sends away) a step function and
gives back what it returned. The engine alone merges results and commits them. A provider that
runs steps elsewhere (e.g. Celery workers) answers :meth:`ExecutionProvider.dispatch_async_task`
with a :class:`TaskDispatched` instead of a result; the workflow then waits in ``PENDING_ASYNC``
until the remote side reports the result back (docs/architecture.md, "Remote execution").

:meth:`ExecutionProvider.dispatch_parallel_tasks` runs the tasks of a PARALLEL step and reports
one :class:`ParallelOutcome` per :class:`ParallelTask`, in the tasks' order. Each task works on
its own copy of the state (:func:`isolated_state`): tasks cannot change the workflow's state,
the engine merges their results.

**Remote PARALLEL tasks.** A provider may declare the optional attribute
``remote_parallel_tasks = True`` (read with ``getattr(provider, "remote_parallel_tasks",
False)``; it is not a member of the Protocol, and a provider without it keeps the in-process
path). The engine then never calls ``dispatch_parallel_tasks`` for a PARALLEL step: it commits
the run PENDING_ASYNC with one dispatch token per task and sends every task as an
:class:`AsyncTask` of its own through :meth:`ExecutionProvider.dispatch_async_task`
(``step_name`` is the PARALLEL step, ``parallel_task`` the task, ``user_input`` the task's
keyword arguments, ``function_path`` the task's function). A worker runs each one with
``WorkflowBuilder.run_dispatched_step(workflow_id, step_index, token, user_input=...)``, which
applies the step's ``timeout_seconds`` and ``retry_policy`` around the task's function; the
report that completes the set merges once (docs/architecture.md, "Remote execution").
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ruvon.errors import StepResultError
from ruvon.models import StepContext

StepFunction = Callable[..., "dict[str, Any] | Awaitable[dict[str, Any] | None] | None"]
"""``fn(state, context, **user_input) -> dict`` — a plain function or a coroutine function."""

__all__ = [
    "AsyncTask",
    "ExecutionContext",
    "ExecutionProvider",
    "ParallelOutcome",
    "ParallelTask",
    "StepFunction",
    "TaskDispatched",
    "isolated_state",
    "step_result",
]


def step_result(step_name: str, returned: object) -> dict[str, Any]:
    """What a step function returned, as the dict the engine merges: ``None`` is ``{}``, a
    Pydantic model is its dump. Anything else (a tuple, a string) is a mistake that would lose
    data: :class:`StepResultError` names the step and the type. Every execution provider
    passes a function's return value through this."""
    if isinstance(returned, dict):
        return returned
    if returned is None:
        return {}
    dump = getattr(returned, "model_dump", None)
    if callable(dump):
        return dict(dump())
    raise StepResultError(
        step_name,
        f"returned {type(returned).__name__} ({returned!r:.80}); a step function must return "
        "a dict (or a Pydantic model, or None)",
    )


def isolated_state(state: Any) -> Any:
    """The copy of the workflow's state that one parallel task receives: a Pydantic model's
    ``model_copy(deep=True)``, a deep copy of anything else (a dict). Whatever the task does to
    it never reaches the workflow's state or another task's copy."""
    if isinstance(state, BaseModel):
        return state.model_copy(deep=True)
    return copy.deepcopy(state)


@dataclass(frozen=True, slots=True)
class ExecutionContext:
    """Tracing information that travels with a dispatched task."""

    trace_id: str
    workflow_id: str
    step_name: str
    attempt: int = 1
    actor_id: str | None = None


@dataclass(frozen=True, slots=True)
class AsyncTask:
    """An ASYNC step to run, described so that another process can run it.

    ``function_path`` is importable by the worker; ``state`` is the JSON-ready state; the worker
    reports ``(workflow_id, step_index, expected_version)`` back so that a redelivered task can
    never apply the same step twice.
    """

    workflow_id: str
    workflow_type: str
    step_name: str
    step_index: int
    function_path: str
    state: dict[str, Any]
    expected_version: int
    user_input: Mapping[str, Any] = field(default_factory=dict)
    data_region: str | None = None
    execution_context: ExecutionContext | None = None
    token: str = ""
    """The dispatch token stored with the workflow: a completion must present it."""
    parallel_task: str | None = None
    """The task's name when this is one task of a PARALLEL step (``step_name`` is then the
    PARALLEL step's name and ``function_path`` the task's function); ``None`` for an ASYNC
    step."""
    timeout_seconds: float | None = None
    """The PARALLEL step's ``timeout_seconds`` with each of its tasks, for information (e.g. a
    broker's time limit): the worker applies it itself around the task's function
    (``Workflow.run_dispatched``), and a task that runs past it has failed (``TimeoutError``)."""
    queue: str | None = None
    """Where a distributed provider sends it: the step's ``queue``, else the workflow's
    ``data_region``, else the provider's default queue."""
    report: Callable[..., Awaitable[Any]] | None = field(default=None, compare=False)
    """For providers that run the task in this process in the background: call
    ``await report(result=...)`` or ``await report(error=...)`` when it is done. Remote
    providers ignore it and report through ``WorkflowBuilder.complete_async_step``."""


@dataclass(frozen=True, slots=True)
class TaskDispatched:
    """The answer of a provider that sent the task away: the workflow waits for the result."""

    task_id: str


@dataclass(frozen=True, slots=True)
class ParallelTask:
    """One task of a PARALLEL step: ``func(state_copy, context, **kwargs)`` under ``name``."""

    name: str
    func: StepFunction
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParallelOutcome:
    """What one parallel task came to: its result (``step_result`` of what it returned) or the
    exception that stopped it (a ``TimeoutError`` when it did not finish in time), never both.
    ``duration_ms`` runs from the task's start to its end (or to the moment it was given up)."""

    name: str
    result: dict[str, Any] | None
    error: BaseException | None
    duration_ms: float


@runtime_checkable
class ExecutionProvider(Protocol):
    """Runs step functions, in this process or elsewhere.

    Optional, not a member: ``remote_parallel_tasks: bool`` (default False). True sends the
    tasks of PARALLEL steps one by one through :meth:`dispatch_async_task` instead of
    :meth:`dispatch_parallel_tasks` (see the module docstring).
    """

    async def initialize(self) -> None:
        """Prepare resources (threads, broker connections). Idempotent."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def execute_sync_step_function(
        self, func: StepFunction, state: Any, context: StepContext, **user_input: Any
    ) -> dict[str, Any]:
        """Run ``func(state, context, **user_input)`` now and return its result (``{}`` for None).

        Coroutine functions are awaited. Exceptions (including directives) propagate unchanged.
        """
        ...

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        """Run an ASYNC step: either now (return its result) or elsewhere (return the task id)."""
        ...

    async def dispatch_parallel_tasks(
        self,
        tasks: Sequence[ParallelTask],
        state: Any,
        context_factory: Callable[[ParallelTask], StepContext],
        *,
        timeout_seconds: float | None = None,
    ) -> list[ParallelOutcome]:
        """Run the tasks of a PARALLEL step and return one outcome per task, in the order of
        ``tasks`` whatever order they finish in.

        Each task is called as ``task.func(isolated_state(state), context_factory(task),
        **task.kwargs)``: it gets its own copy of the state, so it cannot change the workflow's
        state (the engine merges the results). What it returns goes through
        :func:`step_result`. An exception of a task (a non-dict result's
        :class:`StepResultError` included), or not finishing within ``timeout_seconds`` of its
        start (``TimeoutError``), becomes that task's ``error``; the others are unaffected and
        the call itself does not raise. ``timeout_seconds`` must be positive (or ``None``).
        """
        ...
