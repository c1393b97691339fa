"""OpenTelemetryObserver: real workflows (memory store and a SQLite file) observed into an SDK
``TracerProvider`` with an in-memory exporter: a span per step with its attributes, ERROR on a
failed step, instant lifecycle spans, a span per call with ``trace_call``, compensations,
children, links back to the run's ``started`` span; a broken tracer changes nothing; ``import
ruvon`` does not load OpenTelemetry."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, Field

from ruvon import WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.implementations.observability.otel import OpenTelemetryObserver
from ruvon.models import StepContext
from ruvon.providers.persistence import PersistenceProvider

HERE = "tests.engine.test_otel_observer"


# -- the workflows ------------------------------------------------------------------------


class TraceState(BaseModel):
    order_id: str = "T"
    lines: list[int] = Field(default_factory=lambda: [1, 2, 3])
    totals: dict[str, int] = Field(default_factory=dict)
    visited: list[str] = Field(default_factory=list)
    quotes: dict[str, int] = Field(default_factory=dict)
    approved: bool | None = None
    released: bool = False


def visit(state: TraceState, context: StepContext) -> dict[str, Any]:
    return {"visited": [*state.visited, context.step_name]}


def quote_a(state: TraceState, context: StepContext) -> dict[str, Any]:
    return {"quotes": {"a": 1}}


def quote_b(state: TraceState, context: StepContext) -> dict[str, Any]:
    return {"quotes": {"b": 2}}


def price_line(state: TraceState, context: StepContext, item: int) -> dict[str, Any]:
    return {"totals": {str(item): item * 10}}


def explode(state: TraceState, context: StepContext) -> dict[str, Any]:
    raise ValueError("card declined")


def approve(state: TraceState, context: StepContext, approved: bool = False) -> dict[str, Any]:
    return {"approved": approved}


def release(state: TraceState, context: StepContext) -> dict[str, Any]:
    return {"released": True}


REGISTRY = {
    "Order": f"""
        - name: Validate
          function: {HERE}.visit
          automate_next: true
        - name: Quote
          type: PARALLEL
          tasks:
            - name: A
              function_path: {HERE}.quote_a
            - name: B
              function_path: {HERE}.quote_b
          merge_strategy: DEEP
          automate_next: true
        - name: Charge
          function: {HERE}.visit
    """,
    "Fragile": f"""
        - name: Start
          function: {HERE}.visit
          automate_next: true
        - name: Explode
          function: {HERE}.explode
    """,
    "Review": f"""
        - name: Prepare
          function: {HERE}.visit
          automate_next: true
        - name: Approve
          type: HUMAN_IN_LOOP
          function: {HERE}.approve
          automate_next: true
        - name: Ship
          function: {HERE}.visit
    """,
    "Checkout": f"""
        - name: Reserve
          function: {HERE}.visit
          compensate_function: {HERE}.release
          automate_next: true
        - name: Charge
          function: {HERE}.explode
    """,
    "Graph": f"""
        - name: Start
          function: {HERE}.visit
          automate_next: true
        - name: Left
          function: {HERE}.quote_a
          dependencies: [Start]
          automate_next: true
        - name: Right
          function: {HERE}.quote_b
          dependencies: [Start]
          automate_next: true
        - name: Join
          function: {HERE}.visit
          dependencies: [Left, Right]
    """,
    "Batches": f"""
        - name: Price
          type: PARALLEL
          iterate_over: state.lines
          task_function: {HERE}.price_line
          batch_size: 2
          merge_strategy: DEEP
    """,
    "Parent": f"""
        - name: Delegate
          type: SUB_WORKFLOW
          target_workflow_type: Order
          automate_next: true
        - name: Finish
          function: {HERE}.visit
    """,
}


def write_config(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["workflows:"]
    for workflow_type, steps in REGISTRY.items():
        saga = "saga_enabled: true\n" if workflow_type == "Checkout" else ""
        body = textwrap.indent(textwrap.dedent(steps).strip(), "  ")
        text = f'workflow_type: {workflow_type}\nworkflow_version: "1"\n{saga}steps:\n{body}\n'
        (root / f"{workflow_type.lower()}.yaml").write_text(text, encoding="utf-8")
        lines += [
            f"  - type: {workflow_type}",
            f"    config_file: {workflow_type.lower()}.yaml",
            f"    initial_state_model: {HERE}.TraceState",
        ]
    registry = root / "workflow_registry.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return registry


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def persistence(request: pytest.FixtureRequest) -> PersistenceProvider:
    """The memory store, then a SQLite file (the suite's ``memory_store``/``sqlite_store``)."""
    provider: PersistenceProvider = request.getfixturevalue(f"{request.param}_store")
    return provider


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider
    tracer_provider.shutdown()


@pytest.fixture
def observer(provider: TracerProvider) -> OpenTelemetryObserver:
    return OpenTelemetryObserver(tracer_provider=provider)


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config")


@pytest.fixture
def builder(
    registry: Path, persistence: PersistenceProvider, observer: OpenTelemetryObserver
) -> WorkflowBuilder:
    return WorkflowBuilder(registry, persistence_provider=persistence, workflow_observer=observer)


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in spans(exporter)]


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [span for span in spans(exporter) if span.name == name]
    return span


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- tests ----------------------------------------------------------------------------------


async def test_a_run_gives_a_span_per_step_under_the_applications_span(
    builder: WorkflowBuilder, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("POST /orders") as request:
        workflow = await builder.create_workflow("Order", {"order_id": "O1"})
        await workflow.run()

    assert workflow.status is WorkflowStatus.COMPLETED
    assert names(exporter) == [
        "ruvon.workflow.started",
        "ruvon.step Validate",
        "ruvon.step Quote",
        "ruvon.step Charge",
        "ruvon.workflow.completed",
        "POST /orders",
    ]
    parent = request.get_span_context()
    for span in spans(exporter)[:-1]:
        assert span.parent is not None and span.parent.span_id == parent.span_id
        assert span.context is not None and span.context.trace_id == parent.trace_id
        assert span.kind is SpanKind.INTERNAL
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "ruvon"
        assert attrs(span)["ruvon.workflow.id"] == workflow.id
        assert attrs(span)["ruvon.workflow.type"] == "Order"
        assert span.status.status_code is StatusCode.UNSET

    quote = named(exporter, "ruvon.step Quote")  # the PARALLEL step: one span, tasks merged
    quote_attributes = attrs(quote)
    duration_ms = quote_attributes.pop("ruvon.step.duration_ms")
    assert quote_attributes == {
        "ruvon.workflow.id": workflow.id,
        "ruvon.workflow.type": "Order",
        "ruvon.step.name": "Quote",
        "ruvon.step.index": 1,
        "ruvon.step.status": "COMPLETED",
    }
    assert duration_ms > 0
    assert quote.start_time is not None and quote.end_time is not None
    assert quote.end_time - quote.start_time == pytest.approx(duration_ms * 1e6, abs=1)
    assert attrs(named(exporter, "ruvon.step Charge"))["ruvon.step.index"] == 2

    started = named(exporter, "ruvon.workflow.started")
    assert attrs(started)["ruvon.workflow.event"] == "started"
    assert attrs(started)["ruvon.workflow.status"] == "ACTIVE"
    completed = attrs(named(exporter, "ruvon.workflow.completed"))
    assert completed["ruvon.workflow.previous_status"] == "ACTIVE"
    assert completed["ruvon.workflow.status"] == "COMPLETED"
    # Within the trace that created the run, nothing needs a link back to it.
    assert all(not span.links for span in spans(exporter))


async def test_a_failed_step_is_an_error_span_and_the_run_a_failed_span(
    builder: WorkflowBuilder, exporter: InMemorySpanExporter
) -> None:
    workflow = await builder.create_workflow("Fragile", {"order_id": "O2"})
    with pytest.raises(ValueError, match="card declined"):
        await workflow.run()

    assert names(exporter) == [
        "ruvon.workflow.started",
        "ruvon.step Start",
        "ruvon.step Explode",
        "ruvon.workflow.failed",
    ]
    step = named(exporter, "ruvon.step Explode")
    assert step.status.status_code is StatusCode.ERROR
    assert step.status.description == "ValueError: card declined"
    assert attrs(step)["ruvon.step.status"] == "FAILED"
    assert attrs(step)["ruvon.step.index"] == 1
    assert attrs(step)["error.type"] == "ValueError"
    assert attrs(step)["ruvon.error.message"] == "ValueError: card declined"
    (event,) = step.events
    assert event.name == "exception"
    assert dict(event.attributes or {}) == {
        "exception.type": "ValueError",
        "exception.message": "card declined",
    }
    failed = named(exporter, "ruvon.workflow.failed")
    assert failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["ruvon.workflow.previous_status"] == "ACTIVE"
    assert attrs(failed)["ruvon.workflow.status"] == "FAILED"
    assert named(exporter, "ruvon.step Start").status.status_code is StatusCode.UNSET
    # Without a span of the application, each span is a root of its own; the later ones link
    # to the run's ``started`` span.
    assert all(span.parent is None for span in spans(exporter))
    anchor = named(exporter, "ruvon.workflow.started").context
    assert anchor is not None
    for span in spans(exporter)[1:]:
        assert [link.context.span_id for link in span.links] == [anchor.span_id]


async def test_trace_call_is_a_span_per_call_holding_what_the_call_did(
    builder: WorkflowBuilder, observer: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    with observer.trace_call(workflow_type="Review", operation="create") as span:
        workflow = await builder.create_workflow("Review", {"order_id": "O3"})
        await workflow.next_step()
    first = span.get_span_context()

    assert workflow.status is WorkflowStatus.WAITING_HUMAN
    assert names(exporter) == [
        "ruvon.workflow.started",
        "ruvon.step Prepare",
        "ruvon.workflow.paused",
        "ruvon.workflow Review",
    ]
    call = named(exporter, "ruvon.workflow Review")
    assert attrs(call) == {
        "ruvon.workflow.operation": "create",
        "ruvon.workflow.type": "Review",
        "ruvon.workflow.id": workflow.id,
        "ruvon.workflow.status": "WAITING_HUMAN",
    }
    paused = attrs(named(exporter, "ruvon.workflow.paused"))
    assert paused["ruvon.workflow.pause_reason"] == "HUMAN_IN_LOOP"
    assert paused["ruvon.workflow.status"] == "WAITING_HUMAN"
    assert paused["ruvon.step.name"] == "Approve"
    for inner in spans(exporter)[:-1]:
        assert inner.parent is not None and inner.parent.span_id == first.span_id

    exporter.clear()
    with observer.trace_call(workflow, operation="next_step") as span:
        await workflow.next_step({"approved": True})
    second = span.get_span_context()

    assert names(exporter) == [
        "ruvon.workflow.status_changed",
        "ruvon.step Approve",
        "ruvon.step Ship",
        "ruvon.workflow.completed",
        "ruvon.workflow Review",
    ]
    resumed = attrs(named(exporter, "ruvon.workflow.status_changed"))
    assert resumed["ruvon.workflow.previous_status"] == "WAITING_HUMAN"
    assert resumed["ruvon.workflow.status"] == "ACTIVE"
    assert resumed["ruvon.step.name"] == "Approve"
    assert attrs(named(exporter, "ruvon.workflow Review"))["ruvon.workflow.status"] == "COMPLETED"
    # A later call is another trace: its spans link back to the run's ``started`` span.
    for inner in spans(exporter)[:-1]:
        assert inner.parent is not None and inner.parent.span_id == second.span_id
        assert len(inner.links) == 1
        assert inner.links[0].context.trace_id == first.trace_id


async def test_an_exception_leaving_trace_call_marks_the_call_failed(
    builder: WorkflowBuilder, observer: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    workflow = await builder.create_workflow("Fragile", {"order_id": "O4"})
    exporter.clear()
    with pytest.raises(ValueError), observer.trace_call(workflow, operation="run"):
        await workflow.run()

    call = named(exporter, "ruvon.workflow Fragile")
    assert call.status.status_code is StatusCode.ERROR
    assert attrs(call)["ruvon.workflow.status"] == "FAILED"
    assert [event.name for event in call.events] == ["exception"]


async def test_a_rollback_gives_a_span_per_compensation(
    builder: WorkflowBuilder, exporter: InMemorySpanExporter
) -> None:
    workflow = await builder.create_workflow("Checkout", {"order_id": "O5"})
    with pytest.raises(ValueError):
        await workflow.run()

    assert workflow.status is WorkflowStatus.FAILED_ROLLED_BACK
    assert "ruvon.compensation Reserve" in names(exporter)
    compensation = named(exporter, "ruvon.compensation Reserve")
    assert attrs(compensation)["ruvon.compensation.success"] is True
    assert attrs(compensation)["ruvon.step.name"] == "Reserve"
    assert compensation.status.status_code is StatusCode.UNSET
    failed = named(exporter, "ruvon.workflow.failed")
    assert attrs(failed)["ruvon.workflow.status"] == "FAILED_ROLLED_BACK"
    assert failed.status.status_code is StatusCode.ERROR
    assert named(exporter, "ruvon.step Charge").status.status_code is StatusCode.ERROR


async def test_a_child_workflow_is_reported_with_both_ids(
    builder: WorkflowBuilder, exporter: InMemorySpanExporter
) -> None:
    parent = await builder.create_workflow("Parent", {"order_id": "O6"})
    await parent.run()

    assert parent.status is WorkflowStatus.COMPLETED
    child_started = named(exporter, "ruvon.workflow.child_started")
    child_id = attrs(child_started)["ruvon.child.id"]
    assert attrs(child_started)["ruvon.workflow.id"] == parent.id
    assert attrs(child_started)["ruvon.child.type"] == "Order"
    assert attrs(child_started)["ruvon.step.name"] == "Delegate"
    child_steps = [
        span
        for span in spans(exporter)
        if span.name.startswith("ruvon.step ") and attrs(span)["ruvon.workflow.id"] == child_id
    ]
    assert [span.name for span in child_steps] == [
        "ruvon.step Validate",
        "ruvon.step Quote",
        "ruvon.step Charge",
    ]
    assert all(attrs(span)["ruvon.workflow.type"] == "Order" for span in child_steps)
    assert attrs(named(exporter, "ruvon.step Finish"))["ruvon.workflow.id"] == parent.id


async def test_another_process_knows_the_type_once_the_run_says_it(
    registry: Path,
    persistence: PersistenceProvider,
    builder: WorkflowBuilder,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """A fresh observer (another process) has not seen the run start: its step spans carry
    the id; the type arrives with the hooks that name it."""
    workflow = await builder.create_workflow("Review", {"order_id": "O7"})
    await workflow.next_step()
    exporter.clear()
    other = OpenTelemetryObserver(tracer_provider=provider)
    later = WorkflowBuilder(registry, persistence_provider=persistence, workflow_observer=other)

    loaded = await later.load_workflow(workflow.id)
    await loaded.next_step({"approved": True})

    approve = attrs(named(exporter, "ruvon.step Approve"))
    assert approve["ruvon.workflow.id"] == workflow.id
    assert "ruvon.workflow.type" not in approve
    assert attrs(named(exporter, "ruvon.workflow.completed"))["ruvon.workflow.type"] == "Review"
    assert all(not span.links for span in spans(exporter))


async def test_a_dag_stage_and_the_batches_of_a_step_have_spans(
    builder: WorkflowBuilder, exporter: InMemorySpanExporter
) -> None:
    graph = await builder.create_workflow("Graph", {"order_id": "O9"})
    await graph.run()
    batches = await builder.create_workflow("Batches", {"order_id": "O10"})
    await batches.run()

    assert graph.status is WorkflowStatus.COMPLETED
    # Left and Right ran at once as one stage; a step ready alone runs as a step.
    graph_spans = [
        span.name
        for span in spans(exporter)
        if span.name.startswith("ruvon.st") and attrs(span)["ruvon.workflow.id"] == graph.id
    ]
    assert graph_spans == ["ruvon.step Start", "ruvon.stage", "ruvon.step Join"]
    stage = attrs(named(exporter, "ruvon.stage"))
    assert stage["ruvon.stage.steps"] == ("Left", "Right")
    assert stage["ruvon.stage.dispatched"] == ()
    assert stage["ruvon.workflow.type"] == "Graph"
    assert stage["ruvon.stage.duration_ms"] >= 0

    assert batches.status is WorkflowStatus.COMPLETED
    assert batches.state.totals == {"1": 10, "2": 20, "3": 30}
    price = [
        attrs(span)["ruvon.step.status"]
        for span in spans(exporter)
        if span.name == "ruvon.step Price"
    ]
    assert price == ["PROGRESSED", "COMPLETED"]


class Broken:
    """A tracer whose every span fails."""

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("exporter down")


async def test_a_failing_tracer_changes_nothing(
    builder: WorkflowBuilder,
    observer: OpenTelemetryObserver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer.tracer = Broken()  # type: ignore[assignment]

    with caplog.at_level(logging.ERROR, logger="ruvon.observer.otel"):
        workflow = await builder.create_workflow("Order", {"order_id": "O8"})
        status = await workflow.run()

    assert status is WorkflowStatus.COMPLETED
    failures = [r.getMessage() for r in caplog.records if r.name == "ruvon.observer.otel"]
    assert "OpenTelemetryObserver.on_step_executed failed" in failures
    # Caught inside the observer: the engine's own guard never saw them.
    assert not [r for r in caplog.records if r.name == "ruvon.observer"]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_import_ruvon_does_not_load_opentelemetry() -> None:
    result = run_python(
        """
        import sys
        import ruvon
        import ruvon.implementations.observability
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


def test_without_opentelemetry_the_import_error_names_the_extra() -> None:
    result = run_python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        try:
            import ruvon.implementations.observability.otel
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'ruvon-sdk[otel]'" in result.stdout
