"""Observers: any object with some of the hooks receives the events in order, with only the
arguments it asks for; an observer that raises changes nothing; LoggingObserver logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ruvon import ConcurrencyConflictError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.implementations.observability.logging import LoggingObserver, StructuredLogFormatter
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import ConfigDir
from tests.support.order_steps import OrderState

APPROVAL = {"approved": True, "approver": "Ann"}


class Recorder:
    """No base class; some hooks sync, some async, each with its own subset of parameters."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.initial_states: list[Any] = []
        self.status_arguments: set[str] = set()

    async def on_workflow_started(self, workflow_type: str, initial_state: Any) -> None:
        # (An assert here would only be logged: observer failures never reach the workflow.)
        self.events.append(("started", workflow_type))
        self.initial_states.append(initial_state)

    def on_step_executed(self, step_name: str, status: str, result: dict[str, Any]) -> None:
        self.events.append(("step", step_name, status, sorted(result)))

    async def on_workflow_status_changed(
        self, old_status: str, new_status: str, **rest: Any
    ) -> None:
        self.status_arguments |= set(rest)
        self.events.append(("status", old_status, new_status))

    async def on_workflow_paused(self, step_name: str, reason: str) -> None:
        self.events.append(("paused", step_name, reason))

    async def on_workflow_resumed(self, resume_data: dict[str, Any]) -> None:
        self.events.append(("resumed", sorted(resume_data)))

    async def on_workflow_completed(self, workflow_id: str, final_state: Any) -> None:
        self.events.append(("completed", final_state.visited))

    async def on_step_failed(self, step_name: str, error_message: str) -> None:
        self.events.append(("step_failed", step_name, error_message))

    def on_workflow_failed(self, error_message: str) -> None:
        self.events.append(("failed", error_message))


class Exploding:
    """Every hook raises."""

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)

        async def hook(**_: Any) -> None:
            raise RuntimeError(f"{name} is broken")

        return hook


async def test_a_custom_observer_receives_the_events_in_order(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    recorder = Recorder()
    builder = config.builder(persistence, workflow_observer=recorder)

    workflow = await builder.create_workflow("Approval", {"order_id": "O1"})
    await workflow.next_step()
    await workflow.next_step(APPROVAL)
    await workflow.next_step()

    assert recorder.events == [
        ("started", "Approval"),
        ("step", "Prepare", "COMPLETED", ["visited"]),
        ("status", "ACTIVE", "WAITING_HUMAN"),
        ("paused", "Approve", "HUMAN_IN_LOOP"),
        ("resumed", ["approved", "approver"]),
        ("status", "WAITING_HUMAN", "ACTIVE"),
        ("step", "Approve", "COMPLETED", ["approved", "approver", "input_type", "visited"]),
        ("step", "Ship", "COMPLETED", ["visited"]),
        ("status", "ACTIVE", "COMPLETED"),
        ("completed", ["Prepare", "Approve", "Ship"]),
    ]
    assert recorder.initial_states == [OrderState(order_id="O1")]
    # A hook with ``**kwargs`` gets every argument.
    assert recorder.status_arguments == {"workflow_id", "current_step_name", "final_result"}


async def test_jumps_pauses_and_failures_are_observed(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    recorder = Recorder()
    builder = config.builder(persistence)

    jumping = await builder.create_workflow("JumpForward", {"order_id": "O2"})
    # An observer given to load_workflow observes that instance.
    loaded = await builder.load_workflow(jumping.id, workflow_observer=recorder)
    await loaded.next_step()
    assert recorder.events == [("step", "Start", "JUMPED", ["note", "visited"])]

    recorder.events.clear()
    pausing = await builder.create_workflow("Pause", {"order_id": "O3"}, workflow_observer=recorder)
    await pausing.next_step()
    assert recorder.events[0] == ("started", "Pause")
    assert recorder.events[1] == ("step", "Submit", "PAUSED", ["review_requested", "visited"])
    assert recorder.events[2] == ("status", "ACTIVE", "PAUSED")
    assert recorder.events[3] == ("paused", "Submit", "PAUSE_DIRECTIVE")

    recorder.events.clear()
    failing = await builder.create_workflow(
        "Fragile", {"order_id": "O4"}, workflow_observer=recorder
    )
    await failing.next_step()
    with pytest.raises(RuntimeError):
        await failing.next_step()
    assert recorder.events == [
        ("started", "Fragile"),
        ("step", "Start", "COMPLETED", ["visited"]),
        ("step_failed", "Explode", "RuntimeError: card declined"),
        ("status", "ACTIVE", "FAILED"),
        ("failed", "RuntimeError: card declined"),
    ]


async def test_observers_see_only_committed_transitions(
    config: ConfigDir, persistence: PersistenceProvider, fresh: WorkflowBuilder
) -> None:
    """A step whose commit loses the version race is not reported: the committer publishes a
    transition only after the store took it."""
    recorder = Recorder()
    builder = config.builder(persistence, workflow_observer=recorder)
    workflow = await builder.create_workflow("Approval", {"order_id": "O6"})
    rival = await fresh.load_workflow(workflow.id)
    await rival.next_step()  # another process moves the run on first
    recorder.events.clear()

    with pytest.raises(ConcurrencyConflictError):
        await workflow.next_step()

    assert recorder.events == []


async def test_an_observer_that_raises_changes_nothing(
    config: ConfigDir,
    persistence: PersistenceProvider,
    fresh: WorkflowBuilder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    builder = config.builder(persistence, observer=Exploding())

    with caplog.at_level(logging.ERROR, logger="ruvon.observer"):
        workflow = await builder.create_workflow("Approval", {"order_id": "O5"})
        await workflow.next_step()
        status = await workflow.run(APPROVAL)

    assert status is WorkflowStatus.COMPLETED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["Prepare", "Approve", "Ship"]
    failures = {r.getMessage() for r in caplog.records if r.name == "ruvon.observer"}
    assert "Observer Exploding.on_step_executed failed" in failures
    assert "Observer Exploding.on_workflow_completed failed" in failures
    assert all(
        r.levelno == logging.ERROR and r.exc_info
        for r in caplog.records
        if r.name == "ruvon.observer"
    )


async def test_logging_observer_writes_structured_records(
    config: ConfigDir, persistence: PersistenceProvider, caplog: pytest.LogCaptureFixture
) -> None:
    builder = config.builder(persistence, workflow_observer=LoggingObserver())

    with caplog.at_level(logging.INFO, logger="ruvon.events"):
        workflow = await builder.create_workflow("Fragile", {"order_id": "O6"})
        await workflow.next_step()
        with pytest.raises(RuntimeError):
            await workflow.next_step()

    records = [r for r in caplog.records if r.name == "ruvon.events"]
    assert [r.getMessage() for r in records] == [
        "workflow.started",
        "step.executed",
        "step.failed",
        "workflow.status_changed",
        "workflow.failed",
    ]
    started, executed, step_failed, changed, _ = records
    assert started.fields == {"workflow_id": workflow.id, "workflow_type": "Fragile"}  # type: ignore[attr-defined]
    assert executed.fields["step_name"] == "Start"  # type: ignore[attr-defined]
    assert executed.fields["status"] == "COMPLETED"  # type: ignore[attr-defined]
    assert step_failed.levelno == logging.ERROR
    assert step_failed.fields["error"] == "RuntimeError: card declined"  # type: ignore[attr-defined]
    assert changed.fields["new_status"] == "FAILED"  # type: ignore[attr-defined]
    line = StructuredLogFormatter().format(changed)
    assert '"new_status": "FAILED"' in line
    assert f'"workflow_id": "{workflow.id}"' in line
