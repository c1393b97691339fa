"""What every step runner shares: the outcome it reports, the context it runs in, the call of a
step function and the retry loop."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.definition.schema import RetryPolicy, Route
from ruvon.errors import StepResultError, StepTimeoutError
from ruvon.models import (
    StartSubWorkflowDirective,
    StepContext,
    WorkflowJumpDirective,
    WorkflowPauseDirective,
    WorkflowStatus,
)
from ruvon.providers.execution import ExecutionProvider, step_result
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import AuditEvent, MetricPoint, PersistenceProvider
from ruvon.providers.services import NO_SERVICES, StepServices
from ruvon.providers.template_engine import TemplateEngine

__all__ = [
    "DIRECTIVES",
    "ChildSpec",
    "RetryLedger",
    "RetryScheduled",
    "RunnerBase",
    "StepOutcome",
    "StepRun",
    "StepRunner",
    "call_function",
    "fast_context",
    "resolve_list",
    "with_retries",
]

logger = logging.getLogger("ruvon.steps")

DIRECTIVES = (WorkflowJumpDirective, WorkflowPauseDirective, StartSubWorkflowDirective)
"""Exceptions that steer the workflow; they are never retried."""


T = TypeVar("T")


class RetryScheduled(Exception):
    """Raised by :func:`with_retries` when the next attempt is far enough away that the run
    should not hold a process meanwhile: the attempt count and its time are committed, and
    the call returns with the run waiting for that time (the worker drives it then)."""

    def __init__(self, step_name: str, attempt: int, at: datetime) -> None:
        super().__init__(f"Step '{step_name}' retries (attempt {attempt}) at {at.isoformat()}")
        self.step_name = step_name
        self.attempt = attempt
        self.at = at


NOT_RETRIED = (*DIRECTIVES, StepResultError, RetryScheduled)
"""Exceptions that a retry cannot change: directives, a result of the wrong shape, and a
retry already scheduled for later."""


class RetryLedger(Protocol):
    """Where a step's failed attempts are recorded durably (the engine): a crash between
    attempts neither resets the count nor skips the backoff."""

    def attempts_made(self, step: CompiledStep) -> int:
        """Failed attempts of ``step`` already committed for this run (0: none)."""
        ...

    async def attempt_failed(
        self, step: CompiledStep, attempt: int, delay: float, error: Exception
    ) -> None:
        """Commit that ``attempt`` failed and the next one is due in ``delay`` seconds; raise
        :class:`RetryScheduled` when the run should wait for it without this process."""
        ...


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A child workflow a step asks for (``SUB_WORKFLOW`` or ``StartSubWorkflowDirective``)."""

    workflow_type: str
    initial_data: Mapping[str, Any]
    owner_id: str | None = None
    data_region: str | None = None


@dataclass(slots=True)
class StepOutcome:
    """What running a step produced; the workflow merges, routes and commits it."""

    result: dict[str, Any] = field(default_factory=dict)
    jump_to: str | None = None
    """A step to continue at (from a directive); overrides ``routes``."""
    routes: Sequence[Route] = ()
    """Routes to evaluate against the merged state, first match wins."""
    routes_required: bool = False
    """True for DECISION steps: no matching route is an error."""
    wait: WorkflowStatus | None = None
    """PAUSED or WAITING_HUMAN: the workflow stops and waits for input."""
    completes_step: bool = True
    """False when the step itself is still to be done (a human step waiting for its input)."""
    waiting_for: str | None = None
    audit: Sequence[AuditEvent] = ()
    """Extra audit entries the kind records with the step's commit (e.g. a failed task of a
    PARALLEL step that allows partial success)."""
    metadata: Mapping[str, Any] | None = None
    """Keys to set in ``workflow.metadata`` with the step's commit."""
    metrics: Sequence[MetricPoint] = ()
    """Extra metric points the kind records with the step's commit (e.g. each PARALLEL
    task's duration)."""
    dispatch: CallSpec | None = None
    """Run this function elsewhere (``ExecutionProvider.dispatch_async_task``): the workflow is
    committed PENDING_ASYNC with a dispatch token first, and the step completes when its result
    is reported (``Workflow.complete_async_step``)."""
    spawn: ChildSpec | None = None
    """Start this child workflow and wait for it: the run is committed PENDING_SUB_WORKFLOW
    with the child's id, and the step completes when the child does."""
    cursor: Any = None
    """Not ``None`` when the step did only part of its work: ``result`` is merged and committed
    with this cursor (JSON-ready), and the step runs again — in the same call — with it as
    :attr:`StepRun.cursor`. A crash in between resumes from the last committed part."""


@dataclass(slots=True)
class StepRun:
    """Everything a runner may use to run one step of one workflow."""

    workflow_id: str
    workflow_type: str
    state: Any
    user_input: Mapping[str, Any]
    first_in_call: bool
    """True for the step the caller asked for, False for steps reached by ``automate_next``."""
    resuming: WorkflowStatus | None
    """The waiting status this call resumes from, if any."""
    validated_input: Any
    previous_step_result: dict[str, Any] | None
    parent_workflow_id: str | None
    execution: ExecutionProvider
    persistence: PersistenceProvider
    evaluator: ExpressionEvaluator
    templates: TemplateEngine
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The workflow's committed metadata (read-only: a runner changes it through
    :attr:`StepOutcome.metadata`)."""
    cursor: Any = None
    """Where a step that works in parts (batches, iterations) left off, as its last
    :attr:`StepOutcome.cursor` was committed; ``None`` when it starts."""
    services: StepServices = NO_SERVICES
    """The HTTP client, secrets and workflow starter the builder provides."""
    retries: RetryLedger | None = None
    """Where failed attempts are recorded (``None``: in memory only, as in tests of kinds)."""

    def context(self, step: CompiledStep, attempt: int = 1) -> StepContext:
        """The :class:`StepContext` passed to the step's function."""
        return fast_context(
            {
                "workflow_id": self.workflow_id,
                "step_name": step.name,
                "workflow_type": self.workflow_type,
                "step_index": step.index,
                "validated_input": self.validated_input,
                "previous_step_result": self.previous_step_result,
                "loop_item": None,
                "loop_index": None,
                "parent_workflow_id": self.parent_workflow_id,
                "attempt": attempt,
                "persistence": self.persistence,
            }
        )


_CONTEXT_FIELDS = frozenset(StepContext.model_fields)


def fast_context(values: dict[str, Any]) -> StepContext:
    """A StepContext from values that are already valid and complete (one per field).

    This is what ``StepContext.model_construct`` does, without its per-field default handling,
    which costs several microseconds on every step. A test pins the result to
    ``model_construct``'s.
    """
    context = StepContext.__new__(StepContext)
    object.__setattr__(context, "__dict__", values)
    object.__setattr__(context, "__pydantic_fields_set__", set(_CONTEXT_FIELDS))
    object.__setattr__(context, "__pydantic_extra__", None)
    object.__setattr__(context, "__pydantic_private__", None)
    return context


class StepRunner(Protocol):
    """Runs the steps of one kind. Everything the engine needs to know about a kind is asked
    here (and, at load, of the kind's schema hooks): the engine never switches on a kind."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        """Run ``step`` and report its outcome. Exceptions fail the step."""
        ...

    def defers_input(self, step: CompiledStep, run: StepRun) -> bool:
        """True when this call's input is not for the step yet (it will wait for its own):
        the input is then not validated now."""
        ...

    def stage_call(self, step: CompiledStep) -> CallSpec | None:
        """See :meth:`RunnerBase.stage_call`."""
        ...

    def stage_dispatch(self, step: CompiledStep) -> CallSpec | None:
        """See :meth:`RunnerBase.stage_dispatch`."""
        ...


class RunnerBase:
    """Defaults of :class:`StepRunner`: a step takes the input of the call that runs it, and
    it cannot join a concurrent stage of a DAG."""

    def defers_input(self, step: CompiledStep, run: StepRun) -> bool:
        return False

    def stage_call(self, step: CompiledStep) -> CallSpec | None:
        """The function to run when ``step`` is one of several ready steps of a DAG stage
        (they run at the same time through ``dispatch_parallel_tasks``), or None when the
        step must run on its own."""
        return None

    def stage_dispatch(self, step: CompiledStep) -> CallSpec | None:
        """The function to *dispatch* (``ExecutionProvider.dispatch_async_task``) when ``step``
        is one of several ready steps of a DAG stage: it joins the stage's commit as a
        dispatched step and completes when its result is reported. None: not a dispatching
        kind."""
        return None


async def call_function(spec: CallSpec, step: CompiledStep, run: StepRun) -> dict[str, Any]:
    """Call a step function through the execution provider, with the step's retry policy and
    timeout. Directives propagate at once; other exceptions after the last attempt.

    ``timeout_seconds`` bounds each attempt; running past it is a :class:`StepTimeoutError`
    (retried like any failure). A plain (non-async) function with a timeout runs on a worker
    thread (``asyncio.to_thread``), whatever the provider, so that the step can stop waiting
    for it. A thread cannot be killed: the function keeps running in the background, and what
    it returns or raises then is discarded.
    """
    timeout = step.definition.timeout_seconds
    func = spec.func if timeout is None else _preemptible(spec.func)

    async def attempt(number: int) -> dict[str, Any]:
        kwargs = spec.keyword_arguments(run.user_input, run.state)
        call = run.execution.execute_sync_step_function(
            func, run.state, run.context(step, number), **kwargs
        )
        returned = await (call if timeout is None else _within(call, step.name, timeout))
        # A provider of someone else's may hand back what the function returned as it was.
        return returned if type(returned) is dict else step_result(step.name, returned)

    return await with_retries(step, attempt, run=run)


def _preemptible(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` if it is a coroutine function, else a coroutine function that runs it on a
    worker thread (with the caller's context variables): awaiting that can be abandoned."""
    # An object whose __call__ is a coroutine function counts as one.
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__):
        return func

    @functools.wraps(func)
    async def in_thread(*args: Any, **kwargs: Any) -> Any:
        returned = await asyncio.to_thread(func, *args, **kwargs)
        if inspect.isawaitable(returned):
            returned = await returned
        return returned

    return in_thread


class _OwnTimeout(Exception):
    """Carries a TimeoutError the step function raised itself, so that it is not taken for
    the step's timeout."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


async def _within(call: Awaitable[T], step_name: str, timeout: float) -> T:
    """Await ``call`` for at most ``timeout`` seconds; :class:`StepTimeoutError` after that."""

    async def guarded() -> T:
        try:
            return await call
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise _OwnTimeout(exc) from None

    try:
        return await asyncio.wait_for(guarded(), timeout)
    except _OwnTimeout as own:
        raise own.error from own.error.__cause__
    except (TimeoutError, asyncio.TimeoutError):
        raise StepTimeoutError(step_name, timeout) from None


async def with_retries(
    step: CompiledStep,
    attempt: Callable[[int], Awaitable[T]],
    *,
    retryable: Callable[[Exception], bool] | None = None,
    policy: RetryPolicy | None = None,
    run: StepRun | None = None,
) -> T:
    """Run ``attempt(n)`` until it succeeds or the retry policy is exhausted.

    ``policy`` replaces the step's own ``retry_policy`` when given. ``retryable`` decides
    whether a failure is worth another attempt (default: every exception but directives and
    :class:`StepResultError`, which are never retried); a failure it refuses is raised at once.
    With ``run`` (and its ``retries`` ledger), each failed attempt that will be retried is
    committed with the time of the next one before waiting for it, and counting goes on from
    the attempts a previous process committed.
    """
    policy = policy if policy is not None else step.definition.retry_policy
    attempts = policy.max_attempts if policy is not None else 1
    ledger = run.retries if run is not None else None
    number = 1 + (ledger.attempts_made(step) if ledger is not None and policy is not None else 0)
    while True:
        try:
            return await attempt(number)
        except NOT_RETRIED:
            raise
        except Exception as exc:
            if policy is None or number >= attempts:
                raise
            if retryable is not None and not retryable(exc):
                raise
            delay = policy.delay_before(number + 1)
            logger.warning(
                "Step %s failed (%s: %s); attempt %d of %d in %.2fs",
                step.name,
                type(exc).__name__,
                exc,
                number + 1,
                attempts,
                delay,
            )
            if ledger is not None:
                await ledger.attempt_failed(step, number, delay, exc)  # may raise RetryScheduled
            number += 1
            await asyncio.sleep(delay)


_NOT_FOUND = object()


def resolve_list(kind: str, step_name: str, path: str, state: Any) -> Sequence[Any]:
    """The list ``iterate_over`` names: ``state.items``, ``items`` or ``state.order.lines``.

    Raises ``ValueError`` naming the step and the path when a part of the path is missing or
    the value is not a list (a tuple counts as one).
    """
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "state":
        parts = parts[1:]
    value: Any = state
    for part in parts:
        if isinstance(value, Mapping):
            value = value.get(part, _NOT_FOUND)
        elif isinstance(value, BaseModel):
            value = getattr(value, part, _NOT_FOUND)
        else:
            value = _NOT_FOUND
        if value is _NOT_FOUND:
            raise ValueError(
                f"{kind} step '{step_name}': iterate_over '{path}' did not resolve to a list "
                f"(there is no '{part}')"
            )
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{kind} step '{step_name}': iterate_over '{path}' did not resolve to a list "
            f"(got {type(value).__name__})"
        )
    return value
