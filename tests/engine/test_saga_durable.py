"""A saga's rollback is durable: "rollback started", each compensation and the end are separate
commits, each compensation's ``compensation_log`` row and audit entry in its commit, so a
rollback interrupted at any point is finished later (by any process) without running a
committed compensation again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ruvon import WorkflowStateError, WorkflowStatus
from ruvon.errors import ConcurrencyConflictError, PersistenceError
from ruvon.providers.persistence import (
    COMPENSATE,
    COMPENSATE_FAILED,
    PersistenceProvider,
    WorkflowCommit,
)
from tests.support import saga_steps
from tests.support.config import ConfigDir, audit_log, workflow

STEPS = "tests.support.saga_steps"


def _trip(config: ConfigDir, name: str, *, hotel_undo: str = "cancel_hotel", pay: str = "") -> None:
    config.write(
        name,
        workflow(
            name,
            f"""
            - name: Flight
              function: {STEPS}.book_flight
              compensate_function: {STEPS}.cancel_flight
              automate_next: true
            - name: Hotel
              function: {STEPS}.book_hotel
              compensate_function: {STEPS}.{hotel_undo}
              automate_next: true
            - name: Car
              function: {STEPS}.book_car
              compensate_function: {STEPS}.cancel_car
              automate_next: true
            - name: Pay
              function: {STEPS}.take_payment
            {pay}
            """,
            header="saga_enabled: true",
            state_model=f"{STEPS}.Trip",
        ),
    )


class Store:
    """A real store (any backend) that records every commit and can fail chosen ones, like a
    database that goes away in the middle of a rollback."""

    def __init__(self, inner: PersistenceProvider) -> None:
        self.inner = inner
        self.commits: list[WorkflowCommit] = []
        self.fail: Callable[[WorkflowCommit], bool] = lambda commit: False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        if self.fail(commit):
            raise PersistenceError("the database went away")
        version = await self.inner.commit_workflow(commit)
        self.commits.append(commit)
        return version


def _compensating(step: str) -> Callable[[WorkflowCommit], bool]:
    """Fails the commit that records the compensation of ``step``."""
    return lambda commit: any(entry.step_name == step for entry in commit.compensations)


def _calls(workflow_id: str) -> dict[str, int]:
    return {
        name: count for (owner, name), count in saga_steps.CALLS.items() if owner == workflow_id
    }


async def test_each_compensation_is_committed_as_it_completes(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "Trip")
    store = Store(persistence)
    trip = await config.builder(store).create_workflow("Trip", {"trip_id": "T1"})

    with pytest.raises(RuntimeError, match="card declined") as caught:
        await trip.next_step()

    assert caught.value.workflow_status == "FAILED_ROLLED_BACK"  # type: ignore[attr-defined]
    rollback = store.commits[3:]  # after Flight, Hotel and Car
    seen = [
        (
            commit.update.status,
            [entry["step_name"] for entry in commit.update.completed_steps_stack],
            [event.event_type for event in commit.audit],
            [(entry.step_name, entry.action_type) for entry in commit.compensations],
            "rollback" in commit.update.metadata,
        )
        for commit in rollback
    ]
    assert seen == [
        (
            "ACTIVE",
            ["Flight", "Hotel", "Car"],
            ["STEP_FAILED", "COMPENSATION_STARTED"],
            [],
            True,
        ),
        ("ACTIVE", ["Flight", "Hotel"], ["COMPENSATION_EXECUTED"], [("Car", COMPENSATE)], True),
        ("ACTIVE", ["Flight"], ["COMPENSATION_EXECUTED"], [("Hotel", COMPENSATE)], True),
        ("ACTIVE", [], ["COMPENSATION_EXECUTED"], [("Flight", COMPENSATE)], True),
        ("FAILED_ROLLED_BACK", [], ["COMPENSATION_COMPLETED", "WORKFLOW_FAILED"], [], False),
    ]
    assert rollback[0].update.metadata["rollback"] == {
        "step": "Pay",
        "error": "card declined",
        "error_type": "RuntimeError",
        "final_status": "FAILED_ROLLED_BACK",
    }
    assert {commit.update.current_step for commit in rollback} == {"Pay"}
    assert {commit.update.error_message for commit in rollback} == {"RuntimeError: card declined"}
    failed = rollback[-1].audit[-1]
    assert failed.data == {"status": "FAILED_ROLLED_BACK", "error": "card declined"}
    assert (failed.old_status, failed.new_status) == ("ACTIVE", "FAILED_ROLLED_BACK")

    log = await persistence.get_compensation_log(trip.id)
    assert [(e.step_name, e.step_index, e.action_type) for e in log] == [
        ("Car", 2, COMPENSATE),
        ("Hotel", 1, COMPENSATE),
        ("Flight", 0, COMPENSATE),
    ]
    assert log[0].action_result == {"cancelled": ["car"]}
    # Each compensation starts from the state the previous one left.
    assert log[0].state_before is not None
    assert log[0].state_before["junk"] == []  # the failed step's in-place change is gone
    assert log[1].state_before == log[0].state_after
    assert log[2].state_before == log[1].state_after
    stored = await persistence.load_workflow(trip.id)
    assert stored is not None
    assert stored.state == log[2].state_after
    assert stored.state["cancelled"] == ["car", "hotel", "flight"]
    assert stored.status == "FAILED_ROLLED_BACK" and "rollback" not in stored.metadata
    assert _calls(trip.id) == {"cancel_car": 1, "cancel_hotel": 1, "cancel_flight": 1}


async def test_a_failing_compensation_is_logged_and_the_rollback_goes_on(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "TripBadHotel", hotel_undo="cancel_hotel_fails")
    trip = await config.builder(persistence).create_workflow("TripBadHotel", {"trip_id": "T2"})

    with pytest.raises(RuntimeError, match="card declined"):
        await trip.run()

    assert trip.status is WorkflowStatus.FAILED_ROLLED_BACK
    log = await persistence.get_compensation_log(trip.id)
    assert [(e.step_name, e.action_type) for e in log] == [
        ("Car", COMPENSATE),
        ("Hotel", COMPENSATE_FAILED),
        ("Flight", COMPENSATE),
    ]
    hotel = log[1]
    assert hotel.error_message == "RuntimeError: hotel API down"
    assert hotel.action_result is None
    assert hotel.state_after == hotel.state_before  # what it changed in place is discarded
    assert trip.state.cancelled == ["car", "flight"]
    assert trip.state.junk == []
    audit = [(e.event_type, e.step_name) for e in await audit_log(persistence, trip.id)]
    assert audit[-6:] == [
        ("COMPENSATION_STARTED", None),
        ("COMPENSATION_EXECUTED", "Car"),
        ("COMPENSATION_FAILED", "Hotel"),
        ("COMPENSATION_EXECUTED", "Flight"),
        ("COMPENSATION_COMPLETED", None),
        ("WORKFLOW_FAILED", "Pay"),
    ]
    errors = await persistence.get_execution_logs(trip.id, level="ERROR")
    assert [(e.step_name, e.message) for e in errors] == [
        ("Pay", "Step failed: RuntimeError: card declined"),
        ("Hotel", "Compensation failed: RuntimeError: hotel API down"),
    ]


class Observer:
    """Records the rollback's observer events."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    async def on_step_failed(self, step_name: str, error_message: str) -> None:
        self.events.append(("step_failed", step_name))

    async def on_compensation_started(
        self, workflow_id: str, step_name: str, step_index: int
    ) -> None:
        self.events.append(("started", step_name, step_index))

    async def on_compensation_completed(
        self, workflow_id: str, step_name: str, success: bool, error: str | None = None
    ) -> None:
        self.events.append(("completed", step_name, success, error))

    async def on_workflow_rolled_back(self, step_name: str, error_message: str) -> None:
        self.events.append(("rolled_back", step_name, error_message))

    async def on_workflow_status_changed(self, old_status: str, new_status: str) -> None:
        self.events.append(("status", old_status, new_status))

    async def on_workflow_failed(self, error_message: str) -> None:
        self.events.append(("failed", error_message))


async def test_observers_hear_each_committed_compensation(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "TripBadHotel", hotel_undo="cancel_hotel_fails")
    observer = Observer()
    builder = config.builder(persistence, workflow_observer=observer)
    trip = await builder.create_workflow("TripBadHotel", {"trip_id": "T3"})

    with pytest.raises(RuntimeError):
        await trip.next_step()

    assert observer.events == [
        ("step_failed", "Pay"),
        ("started", "Car", 2),
        ("completed", "Car", True, None),
        ("started", "Hotel", 1),
        ("completed", "Hotel", False, "RuntimeError: hotel API down"),
        ("started", "Flight", 0),
        ("completed", "Flight", True, None),
        ("rolled_back", "Pay", "RuntimeError: card declined"),
        ("status", "ACTIVE", "FAILED_ROLLED_BACK"),
        ("failed", "RuntimeError: card declined"),
    ]


async def test_an_interrupted_rollback_resumes_without_repeating_committed_compensations(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "Trip")
    store = Store(persistence)
    trip = await config.builder(store).create_workflow("Trip", {"trip_id": "T4"})
    store.fail = _compensating("Hotel")  # the database goes away after Hotel was cancelled

    with pytest.raises(RuntimeError, match="card declined") as caught:
        await trip.next_step()

    assert isinstance(caught.value.commit_error, PersistenceError)  # type: ignore[attr-defined]
    notes = getattr(caught.value, "__notes__", [])
    assert any("still rolling back" in note and "resume_rollback()" in note for note in notes)
    assert _calls(trip.id) == {"cancel_car": 1, "cancel_hotel": 1}
    with pytest.raises(WorkflowStateError, match="cannot run from this object"):
        await trip.next_step()

    store.fail = lambda commit: False  # the database is back; another process loads the run
    loaded = await config.builder(persistence).load_workflow(trip.id)
    assert loaded.status is WorkflowStatus.ACTIVE and loaded.rolling_back
    assert loaded.current_step_name == "Pay"
    assert [e["step_name"] for e in loaded.completed_steps_stack] == ["Flight", "Hotel"]
    assert loaded.state.cancelled == ["car"]
    assert loaded.error_message == "RuntimeError: card declined"
    for refused in (loaded.retry, lambda: loaded.jump_to_step("Flight")):
        with pytest.raises(WorkflowStateError):
            await refused()

    assert await loaded.resume_rollback(actor="ops") is WorkflowStatus.FAILED_ROLLED_BACK

    # Car's commit had landed: it never ran again. Hotel's had not: it ran again (at least once).
    assert _calls(trip.id) == {"cancel_car": 1, "cancel_hotel": 2, "cancel_flight": 1}
    assert not loaded.rolling_back and loaded.completed_steps_stack == []
    assert loaded.state.cancelled == ["car", "hotel", "flight"]
    log = await persistence.get_compensation_log(trip.id)
    assert [(e.step_name, e.executed_by) for e in log] == [
        ("Car", None),
        ("Hotel", "ops"),
        ("Flight", "ops"),
    ]
    audit = await audit_log(persistence, trip.id)
    types = [e.event_type for e in audit]
    assert types.count("COMPENSATION_STARTED") == 1
    resumed = next(e for e in audit if e.event_type == "COMPENSATION_RESUMED")
    assert (resumed.data, resumed.user_id) == ({"remaining": 2}, "ops")
    assert types[-2:] == ["COMPENSATION_COMPLETED", "WORKFLOW_FAILED"]
    with pytest.raises(WorkflowStateError, match="not rolling back"):
        await loaded.resume_rollback()


@pytest.mark.parametrize("driver", ["next_step", "run"])
async def test_next_step_and_run_finish_an_interrupted_rollback(
    config: ConfigDir, persistence: PersistenceProvider, driver: str
) -> None:
    _trip(config, "Trip")
    store = Store(persistence)
    trip = await config.builder(store).create_workflow("Trip", {"trip_id": "T5"})
    store.fail = _compensating("Car")  # the first compensation's record is lost
    with pytest.raises(RuntimeError):
        await trip.next_step()

    loaded = await config.builder(persistence).load_workflow(trip.id)
    if driver == "run":
        assert await loaded.run() is WorkflowStatus.FAILED_ROLLED_BACK
    else:
        assert await loaded.next_step({"ignored": True}) == ({}, None)

    assert loaded.status is WorkflowStatus.FAILED_ROLLED_BACK
    assert _calls(trip.id) == {"cancel_car": 2, "cancel_hotel": 1, "cancel_flight": 1}
    assert len(await persistence.get_compensation_log(trip.id)) == 3


async def test_of_two_processes_resuming_one_rollback_only_one_goes_on(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "Trip")
    store = Store(persistence)
    trip = await config.builder(store).create_workflow("Trip", {"trip_id": "T6"})
    store.fail = _compensating("Car")
    with pytest.raises(RuntimeError):
        await trip.next_step()
    first = await config.builder(persistence).load_workflow(trip.id)
    second = await config.builder(persistence).load_workflow(trip.id)

    await first.resume_rollback()
    with pytest.raises(ConcurrencyConflictError):
        await second.resume_rollback()

    assert _calls(trip.id) == {"cancel_car": 2, "cancel_hotel": 1, "cancel_flight": 1}
    # The loser was refused before anything ran (its lease claim met the moved version); it
    # stays stale, and refused, until it is loaded again.
    with pytest.raises(ConcurrencyConflictError):
        await second.resume_rollback()
    assert _calls(trip.id) == {"cancel_car": 2, "cancel_hotel": 1, "cancel_flight": 1}


async def test_compensate_on_failure_undoes_the_failed_step_first(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(
        config,
        "TripVoid",
        pay=f"""  compensate_function: {STEPS}.void_payment
              compensate_on_failure: true""",
    )
    trip = await config.builder(persistence).create_workflow("TripVoid", {"trip_id": "T7"})

    with pytest.raises(RuntimeError, match="card declined"):
        await trip.next_step()

    assert trip.state.cancelled == ["payment", "car", "hotel", "flight"]
    log = await persistence.get_compensation_log(trip.id)
    assert [(e.step_name, e.step_index) for e in log] == [
        ("Pay", 3),
        ("Car", 2),
        ("Hotel", 1),
        ("Flight", 0),
    ]


async def test_without_compensate_on_failure_the_failed_step_is_not_undone(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "TripNoVoid", pay=f"  compensate_function: {STEPS}.void_payment")
    trip = await config.builder(persistence).create_workflow("TripNoVoid", {"trip_id": "T8"})

    with pytest.raises(RuntimeError):
        await trip.next_step()

    assert trip.state.cancelled == ["car", "hotel", "flight"]
    assert "void_payment" not in _calls(trip.id)


async def test_cancel_stops_a_rollback_where_it_is(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _trip(config, "Trip")
    store = Store(persistence)
    trip = await config.builder(store).create_workflow("Trip", {"trip_id": "T9"})
    store.fail = _compensating("Hotel")
    with pytest.raises(RuntimeError):
        await trip.next_step()
    loaded = await config.builder(persistence).load_workflow(trip.id)

    await loaded.cancel(reason="operator gave up")

    assert loaded.status is WorkflowStatus.CANCELLED and not loaded.rolling_back
    assert loaded.metadata["rollback"]["step"] == "Pay"  # kept: what was left undone
    assert [e["step_name"] for e in loaded.completed_steps_stack] == ["Flight", "Hotel"]
    with pytest.raises(WorkflowStateError, match="not rolling back"):
        await loaded.resume_rollback()
    assert _calls(trip.id) == {"cancel_car": 1, "cancel_hotel": 1}
