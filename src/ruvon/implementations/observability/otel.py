"""An observer that reports workflows to OpenTelemetry as spans (the ``otel`` extra).

Only the OpenTelemetry *API* is used here: the tracer comes from the ``tracer_provider`` given
to :class:`OpenTelemetryObserver`, else from the global one, so the application chooses the SDK,
the sampler and the exporter (console, OTLP ...), and flushes them.

**Why no span per workflow.** A workflow can wait for days and go on in another process (a
worker, after a restart); a span open that long would be lost with its process and never
exported. And the observer hooks are called *after* each commit, with no hook at the start or
end of a call. So every span is short and complete when the engine reports the moment it
stands for, and what ties the spans of one run together is the attribute ``ruvon.workflow.id``
(search for it) plus, in the process that created the run, a link to its ``started`` span:

- ``ruvon.step <Step>``: one per step outcome (``on_step_executed``, ``on_step_failed``, a
  part of a step with ``on_step_progressed``). It ends when the outcome was committed and
  starts ``duration_ms`` earlier, so it lasts as long as the step ran (a failed step is
  reported without a duration: its span is an instant). A failure sets the span status to
  ERROR, ``error.type`` and an ``exception`` event (type and message: the engine reports the
  failure as ``"Type: message"``, not the exception object).
- ``ruvon.stage``: a DAG stage whose steps ran at once (``on_stage_completed``).
- ``ruvon.compensation <Step>``: a saga compensation, from ``on_compensation_started`` to
  ``on_compensation_completed`` (ERROR when it failed).
- ``ruvon.workflow.<event>``: instant spans for the run's life: ``started``, ``paused``,
  ``completed``, ``failed`` (ERROR), ``child_started``, and ``status_changed`` for the other
  transitions (back to ACTIVE after a wait, PENDING_*, CANCELLED). Each carries the status
  it left and the one it reached; a change the engine follows with its own hook (completed,
  failed, paused) is reported once, by that hook.

Every span is a child of the span current where the engine runs (the application's request
or task span), so one call's steps appear together in its trace. For a span per workflow
*call*, wrap the call in :meth:`OpenTelemetryObserver.trace_call` (``ruvon.workflow <Type>``):
the call is the only thing with a known beginning and end.

Observing never changes a workflow: the engine logs and ignores an observer that raises, and
every hook here catches and logs its own errors as well (logger ``ruvon.observer.otel``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ruvon.models import WorkflowStatus
from ruvon.providers.observer import WorkflowObserver

try:
    from opentelemetry import trace
    from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "ruvon.implementations.observability.otel needs OpenTelemetry: install the 'otel' "
        "extra (pip install 'ruvon-sdk[otel]')."
    ) from exc

__all__ = ["OpenTelemetryObserver", "OtelObserver"]

logger = logging.getLogger("ruvon.observer.otel")

SCOPE = "ruvon"
"""The instrumentation scope of every span."""

_ERROR = re.compile(r"([A-Za-z_][\w.]*): (.*)", re.DOTALL)
_Attributes = dict[str, AttributeValue]


def _version() -> str | None:
    try:
        return version("ruvon-sdk")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return None


def _split_error(message: str) -> tuple[str, str]:
    """``"ValueError: bad"`` -> ``("ValueError", "bad")``; ``"_OTHER"`` without a type."""
    match = _ERROR.fullmatch(message)
    return (match.group(1), match.group(2)) if match else ("_OTHER", message)


def _followed_by_own_hook(new_status: str) -> bool:
    """Whether the engine reports reaching ``new_status`` again through a hook of its own
    (``on_workflow_completed``, ``on_workflow_paused``, ``on_workflow_failed``)."""
    try:
        status = WorkflowStatus(new_status)
    except ValueError:
        return False
    if status is WorkflowStatus.COMPLETED or status.is_waiting:
        return True
    return status.is_terminal and status is not WorkflowStatus.CANCELLED


@dataclass
class _Known:
    """What this observer remembers of one workflow (bounded, least recently used dropped)."""

    workflow_type: str | None = None
    anchor: SpanContext | None = None  # its ``started`` span, linked from its later spans
    move: tuple[str, str] | None = None  # a status change (old, new) whose own hook is next
    compensations: dict[str, int] = field(default_factory=dict)  # step -> start (ns)


@dataclass
class _Call:
    span: Span
    workflow_id: str | None


_CALL: ContextVar[_Call | None] = ContextVar("ruvon_otel_call", default=None)


class OpenTelemetryObserver(WorkflowObserver):
    """Reports workflow events as OpenTelemetry spans (see the module documentation).

    ``tracer_provider``: where the tracer comes from (default: the global provider);
    ``max_tracked_workflows``: how many workflows' types and ``started`` spans to remember
    for the spans that follow (the least recently seen are forgotten first).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        max_tracked_workflows: int = 10_000,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, _version(), tracer_provider=tracer_provider)
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._limit = max(1, max_tracked_workflows)

    # -- a span per call (the application's side) -------------------------------------------

    @contextlib.contextmanager
    def trace_call(
        self,
        workflow: Any = None,
        *,
        workflow_type: str | None = None,
        operation: str = "call",
    ) -> Iterator[Span]:
        """A span ``ruvon.workflow <Type>`` around one call, current inside the block::

            with observer.trace_call(wf, operation="run"):
                await wf.run()

        ``workflow``: the ``Workflow`` called (its id, type and status are recorded), or None
        with ``workflow_type`` for ``create_workflow``/``start_workflow`` (the new id is
        recorded when the engine reports it). An exception leaving the block is recorded and
        sets the span's status to ERROR; it propagates unchanged."""
        workflow_id = getattr(workflow, "id", None)
        kind = workflow_type or getattr(workflow, "workflow_type", None)
        attributes: _Attributes = {"ruvon.workflow.operation": operation}
        if workflow_id is not None:
            attributes["ruvon.workflow.id"] = str(workflow_id)
        if kind is not None:
            attributes["ruvon.workflow.type"] = str(kind)
        name = f"ruvon.workflow {kind}" if kind else "ruvon.workflow"
        with self.tracer.start_as_current_span(name, attributes=attributes) as span:
            token = _CALL.set(_Call(span, None if workflow_id is None else str(workflow_id)))
            try:
                yield span
            finally:
                _CALL.reset(token)
                status = getattr(workflow, "status", None)
                if status is not None:
                    with self._guard("trace_call"):
                        span.set_attribute("ruvon.workflow.status", str(status))

    # -- the hooks -------------------------------------------------------------------------

    async def on_workflow_started(
        self, workflow_id: str, workflow_type: str, initial_state: Any
    ) -> None:
        with self._guard("on_workflow_started"):
            known = self._remember(workflow_id, workflow_type)
            call = _CALL.get()
            if call is not None and call.workflow_id is None:
                call.workflow_id = workflow_id
                call.span.set_attribute("ruvon.workflow.id", workflow_id)
            status = WorkflowStatus.ACTIVE.value
            known.anchor = self._instant("started", workflow_id, {"ruvon.workflow.status": status})

    async def on_step_executed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        status: str,
        result: dict[str, Any] | None,
        current_state: Any,
        duration_ms: float | None = None,
        workflow_type: str | None = None,
    ) -> None:
        with self._guard("on_step_executed"):
            self._remember(workflow_id, workflow_type)
            self._step(workflow_id, step_name, step_index, status, duration_ms, None)

    async def on_step_failed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        error_message: str,
        current_state: Any,
        duration_ms: float | None = None,
        workflow_type: str | None = None,
    ) -> None:
        with self._guard("on_step_failed"):
            self._remember(workflow_id, workflow_type)
            self._step(workflow_id, step_name, step_index, "FAILED", duration_ms, error_message)

    async def on_step_progressed(
        self, workflow_id: str, step_name: str, cursor: Any = None, duration_ms: float | None = None
    ) -> None:
        """A part of a step (a PARALLEL batch, a LOOP iteration) was committed."""
        with self._guard("on_step_progressed"):
            extra: _Attributes = {}
            if isinstance(cursor, (str, bool, int, float)):
                extra["ruvon.step.cursor"] = cursor
            self._step(workflow_id, step_name, None, "PROGRESSED", duration_ms, None, extra)

    async def on_stage_completed(
        self,
        workflow_id: str,
        step_names: Sequence[str],
        dispatched: Sequence[str] = (),
        duration_ms: float | None = None,
    ) -> None:
        """A DAG stage (steps that ran at once) was committed."""
        with self._guard("on_stage_completed"):
            stage = {
                "ruvon.stage.steps": [str(name) for name in step_names],
                "ruvon.stage.dispatched": [str(name) for name in dispatched],
                "ruvon.stage.duration_ms": duration_ms,
            }
            self._emit("ruvon.stage", workflow_id, stage, duration_ms=duration_ms)

    async def on_workflow_status_changed(
        self,
        workflow_id: str,
        old_status: str,
        new_status: str,
        current_step_name: str | None,
        final_result: dict[str, Any] | None = None,
    ) -> None:
        with self._guard("on_workflow_status_changed"):
            call = _CALL.get()
            if call is not None and call.workflow_id == workflow_id:
                call.span.set_attribute("ruvon.workflow.status", new_status)
            if _followed_by_own_hook(new_status):
                self._remember(workflow_id).move = (old_status, new_status)
                return
            attributes = self._moved(workflow_id, (old_status, new_status))
            if current_step_name:
                attributes["ruvon.step.name"] = current_step_name
            self._instant("status_changed", workflow_id, attributes)

    async def on_workflow_paused(self, workflow_id: str, step_name: str, reason: str) -> None:
        with self._guard("on_workflow_paused"):
            attributes = self._moved(workflow_id, None)
            attributes.update({"ruvon.step.name": step_name, "ruvon.workflow.pause_reason": reason})
            self._instant("paused", workflow_id, attributes)

    async def on_workflow_completed(
        self, workflow_id: str, workflow_type: str, final_state: Any
    ) -> None:
        with self._guard("on_workflow_completed"):
            self._remember(workflow_id, workflow_type)
            self._instant("completed", workflow_id, self._moved(workflow_id, None))

    async def on_workflow_failed(
        self, workflow_id: str, workflow_type: str, error_message: str, current_state: Any
    ) -> None:
        with self._guard("on_workflow_failed"):
            self._remember(workflow_id, workflow_type)
            attributes = self._moved(workflow_id, None)
            self._instant("failed", workflow_id, attributes, error=error_message)

    async def on_child_workflow_started(
        self, parent_id: str, child_id: str, child_type: str, step_name: str
    ) -> None:
        with self._guard("on_child_workflow_started"):
            child = self._remember(child_id, child_type)
            attributes = {
                "ruvon.step.name": step_name,
                "ruvon.child.id": child_id,
                "ruvon.child.type": child_type,
            }
            links = [] if child.anchor is None else [Link(child.anchor)]
            self._instant("child_started", parent_id, attributes, links=links)

    async def on_compensation_started(
        self, workflow_id: str, step_name: str, step_index: int
    ) -> None:
        with self._guard("on_compensation_started"):
            self._remember(workflow_id).compensations[step_name] = time.time_ns()

    async def on_compensation_completed(
        self,
        workflow_id: str,
        step_name: str,
        success: bool,
        error: str | None = None,
        step_index: int | None = None,
    ) -> None:
        with self._guard("on_compensation_completed"):
            start = self._remember(workflow_id).compensations.pop(step_name, None)
            attributes = {
                "ruvon.step.name": step_name,
                "ruvon.step.index": step_index,
                "ruvon.compensation.success": success,
            }
            failure = None if success else (error or "compensation failed")
            name = f"ruvon.compensation {step_name}"
            self._emit(name, workflow_id, attributes, start=start, error=failure)

    # -- building spans --------------------------------------------------------------------

    def _step(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int | None,
        status: str,
        duration_ms: float | None,
        error: str | None,
        extra: _Attributes | None = None,
    ) -> None:
        step = {
            "ruvon.step.name": step_name,
            "ruvon.step.index": step_index,
            "ruvon.step.status": status,
            "ruvon.step.duration_ms": None if duration_ms is None else float(duration_ms),
            **(extra or {}),
        }
        name = f"ruvon.step {step_name}"
        self._emit(name, workflow_id, step, duration_ms=duration_ms, error=error)

    def _instant(
        self,
        event: str,
        workflow_id: str,
        attributes: Mapping[str, Any],
        *,
        error: str | None = None,
        links: list[Link] | None = None,
    ) -> SpanContext:
        merged = {**attributes, "ruvon.workflow.event": event}
        return self._emit(f"ruvon.workflow.{event}", workflow_id, merged, error=error, links=links)

    def _emit(
        self,
        name: str,
        workflow_id: str,
        extra: Mapping[str, Any],
        *,
        duration_ms: float | None = None,
        start: int | None = None,
        error: str | None = None,
        links: list[Link] | None = None,
    ) -> SpanContext:
        """Start and end one span now (back-dated to ``start`` or by ``duration_ms``) with the
        workflow's id and type and the ``extra`` attributes that are not None."""
        attributes: _Attributes = {"ruvon.workflow.id": workflow_id}
        known = self._known.get(workflow_id)
        if known is not None and known.workflow_type is not None:
            attributes["ruvon.workflow.type"] = known.workflow_type
        attributes.update({k: v for k, v in extra.items() if v is not None})
        end = time.time_ns()
        if duration_ms is not None and duration_ms >= 0:
            start = end - int(duration_ms * 1_000_000)
        anchor = None if known is None else known.anchor
        links = list(links or [])
        current = trace.get_current_span().get_span_context()
        if anchor is not None and anchor.trace_id != current.trace_id:
            links.append(Link(anchor, {"ruvon.link": "workflow.started"}))
        span = self.tracer.start_span(
            name,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=min(start, end) if start is not None else end,
        )
        if error is not None:
            error_type, text = _split_error(error)
            span.set_attribute("error.type", error_type)
            span.set_attribute("ruvon.error.message", error)
            span.add_event("exception", {"exception.type": error_type, "exception.message": text})
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end)
        return span.get_span_context()

    def _moved(self, workflow_id: str, move: tuple[str, str] | None) -> _Attributes:
        """The status change a lifecycle span reports: ``move``, else the one stashed by
        ``on_workflow_status_changed`` just before (taken)."""
        if move is None:
            known = self._known.get(workflow_id)
            if known is not None:
                move, known.move = known.move, None
        if move is None:
            return {}
        return {"ruvon.workflow.previous_status": move[0], "ruvon.workflow.status": move[1]}

    def _remember(self, workflow_id: str, workflow_type: str | None = None) -> _Known:
        known = self._known.get(workflow_id)
        if known is None:
            known = self._known[workflow_id] = _Known()
            while len(self._known) > self._limit:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(workflow_id)
        if workflow_type is not None:
            known.workflow_type = workflow_type
        return known

    @contextlib.contextmanager
    def _guard(self, hook: str) -> Iterator[None]:
        try:
            yield
        except Exception:
            logger.exception("OpenTelemetryObserver.%s failed", hook)


OtelObserver = OpenTelemetryObserver
"""The name the API inventory uses."""
