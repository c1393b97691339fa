"""``ScheduleRunner`` on every provider: due schedules start their workflow (and its first step)
exactly once, racing runners included; schedules advance; bad schedules never stop it; the
CRON_SCHEDULE step registers schedules that the runner then fires.

Every test passes ``now=`` explicitly: nothing depends on the wall clock."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest

from ruvon import DefinitionError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider, ScheduleRecord
from ruvon.scheduler import ScheduledRun, ScheduleRunner, schedule_idempotency_key
from tests.schedules import steps
from tests.schedules.conftest import T0
from tests.support.config import ConfigDir

HOURLY = "0 * * * *"
ONE = T0 + timedelta(hours=1)
"""The first fire time of an hourly schedule registered at T0."""


def _ticks() -> list[str]:
    """The workflow ids of the ``Tick`` calls so far, in order."""
    return list(steps.TICKS)


async def _get(store: PersistenceProvider, name: str) -> ScheduleRecord:
    schedule = await store.get_scheduled_workflow(name)
    assert schedule is not None, f"schedule {name!r} is missing"
    return schedule


async def _register(
    store: PersistenceProvider,
    name: str,
    workflow_type: str = "Nightly",
    data: dict[str, object] | None = None,
    **options: object,
) -> ScheduleRecord:
    initial = {"order_id": name} if data is None else data
    return await store.register_scheduled_workflow(
        name, workflow_type, HOURLY, initial, now=T0, **options
    )


async def test_fires_due_schedules_once_and_advances_them(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    await _register(store, "due", data={"order_id": "A-1", "amount": 7})
    await store.register_scheduled_workflow(
        "future", "Nightly", "0 3 * * *", {"order_id": "F"}, now=T0
    )
    await _register(store, "paused", enabled=False)
    runner = ScheduleRunner(builder)
    now = ONE + timedelta(seconds=20)

    started = await runner.run_once(now=now)

    assert len(started) == 1
    run = started[0]
    assert isinstance(run, ScheduledRun)
    assert (run.schedule_name, run.fire_time, run.error) == ("due", ONE, None)
    assert run.status == "ACTIVE"
    workflow = await builder.load_workflow(run.workflow_id)
    assert workflow.workflow_type == "Nightly"
    assert workflow.state.order_id == "A-1" and workflow.state.amount == 7
    assert workflow.state.visited == ["Tick"]  # the first step ran, and only it
    assert workflow.current_step_name == "Tock"
    assert workflow.idempotency_key == schedule_idempotency_key("due", ONE)
    assert workflow.metadata == {"schedule_name": "due", "scheduled_for": ONE.isoformat()}
    assert _ticks() == [run.workflow_id]

    due = await _get(store, "due")
    assert (due.next_run_at, due.last_run_at, due.run_count) == (ONE + timedelta(hours=1), now, 1)
    future = await _get(store, "future")
    assert (future.next_run_at, future.run_count) == (T0 + timedelta(hours=3), 0)
    paused = await _get(store, "paused")
    assert (paused.next_run_at, paused.run_count) == (ONE, 0)

    # The same moment again: nothing is due any more.
    assert await runner.run_once(now=now) == []
    assert await store.count_workflows() == 1
    assert _ticks() == [run.workflow_id]


async def test_missed_fire_times_fire_once_then_jump_ahead(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    await _register(store, "hourly")
    now = T0 + timedelta(hours=5, minutes=30)  # 01:00 to 05:00 were missed
    started = await ScheduleRunner(builder).run_once(now=now)
    assert [(run.schedule_name, run.fire_time) for run in started] == [("hourly", ONE)]
    schedule = await _get(store, "hourly")
    assert schedule.next_run_at == T0 + timedelta(hours=6)
    assert schedule.run_count == 1
    assert await ScheduleRunner(builder).run_once(now=now) == []


async def test_each_fire_time_starts_its_own_workflow(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    await _register(store, "hourly")
    runner = ScheduleRunner(builder)
    first = await runner.run_once(now=ONE)
    second = await runner.run_once(now=ONE + timedelta(hours=1))
    assert [run.fire_time for run in first + second] == [ONE, ONE + timedelta(hours=1)]
    assert first[0].workflow_id != second[0].workflow_id
    assert (await _get(store, "hourly")).run_count == 2
    assert await store.count_workflows(workflow_type="Nightly") == 2


class _ReadTogether:
    """Makes racing runners read the due schedules before any of them starts one.

    On the memory store nothing yields to the event loop, so the first runner would otherwise
    fire everything before the others even look; this way every runner sees every schedule
    due and they really race to start and advance them.
    """

    def __init__(self, store: PersistenceProvider, runners: int) -> None:
        self.store = store
        self.waiting = runners
        self.everyone_read = asyncio.Event()

    def view(self) -> object:
        """A store for one runner: the shared one, with the gate on its first read."""
        gate, store = self, self.store

        class Gated:
            first = True

            def __getattr__(self, name: str) -> object:
                return getattr(store, name)

            async def get_due_schedules(
                self, now: datetime, *, limit: int = 100
            ) -> list[ScheduleRecord]:
                due = await store.get_due_schedules(now, limit=limit)
                if self.first:
                    self.first = False
                    gate.waiting -= 1
                    if gate.waiting == 0:
                        gate.everyone_read.set()
                    await gate.everyone_read.wait()
                return due

        return Gated()


async def test_two_runners_racing_on_one_store(
    config: ConfigDir, builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    names = [f"s{i}" for i in range(6)]
    for name in names:
        await _register(store, name)
    other = config.builder(store)  # a second application object on the same store
    gate = _ReadTogether(store, 3)
    runners = [
        ScheduleRunner(builder, gate.view()),  # type: ignore[arg-type]
        ScheduleRunner(other, gate.view()),  # type: ignore[arg-type]
        ScheduleRunner(builder, gate.view()),  # type: ignore[arg-type]
    ]

    results = await asyncio.gather(*(runner.run_once(now=ONE) for runner in runners))

    started = [run for result in results for run in result]
    assert sorted(run.schedule_name for run in started) == names
    assert len(set(steps.TICKS)) == len(steps.TICKS) == len(names)  # each first step once
    assert sorted(run.workflow_id for run in started) == sorted(steps.TICKS)
    assert await store.count_workflows() == len(names)
    for name in names:
        schedule = await _get(store, name)
        assert (schedule.run_count, schedule.next_run_at) == (1, ONE + timedelta(hours=1))


async def test_a_crash_between_starting_and_advancing_starts_nothing_twice(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    """A runner died after creating the fire time's workflow: the next one only advances."""
    await _register(store, "s")
    crashed = await builder.create_workflow(
        "Nightly", {"order_id": "s"}, idempotency_key=schedule_idempotency_key("s", ONE)
    )
    assert await ScheduleRunner(builder).run_once(now=ONE) == []
    assert await store.count_workflows() == 1
    assert _ticks() == []  # the first step belongs to whoever created it
    schedule = await _get(store, "s")
    assert (schedule.run_count, schedule.next_run_at) == (1, ONE + timedelta(hours=1))
    assert (await builder.load_workflow(crashed.id)).status is WorkflowStatus.ACTIVE


async def test_bad_schedules_do_not_stop_the_runner(
    builder: WorkflowBuilder, store: PersistenceProvider, caplog: pytest.LogCaptureFixture
) -> None:
    await _register(store, "a-unknown-type", workflow_type="NoSuchWorkflow")
    await _register(store, "b-invalid-data", data={"amount": "lots"})  # no order_id either
    await _register(store, "c-good")
    await _register(store, "d-strike", workflow_type="Strike")

    with caplog.at_level(logging.ERROR, logger="ruvon.scheduler"):
        started = await ScheduleRunner(builder).run_once(now=ONE)

    assert [run.schedule_name for run in started] == ["c-good", "d-strike"]
    good, strike = started
    assert good.status == "ACTIVE" and good.error is None
    assert strike.status == "FAILED"
    assert strike.error is not None and "the night shift is on strike" in strike.error
    assert (await builder.load_workflow(strike.workflow_id)).status is WorkflowStatus.FAILED

    messages = [
        record.getMessage() for record in caplog.records if record.name == "ruvon.scheduler"
    ]
    for name in ("a-unknown-type", "b-invalid-data", "d-strike"):
        assert any(name in message for message in messages), (name, messages)
    assert any("NoSuchWorkflow" in message for message in messages)
    assert any("order_id" in message for message in messages)

    # Every schedule moved on; only those that started a workflow count a run.
    for name, runs in (
        ("a-unknown-type", 0),
        ("b-invalid-data", 0),
        ("c-good", 1),
        ("d-strike", 1),
    ):
        schedule = await _get(store, name)
        assert (schedule.next_run_at, schedule.run_count) == (ONE + timedelta(hours=1), runs), name
    assert await store.count_workflows() == 2


async def test_a_stored_expression_that_no_longer_parses_is_set_aside(
    builder: WorkflowBuilder, store: PersistenceProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # As a row written by hand (or by another tool) could be: registered, then corrupted.
    await _register(store, "broken")
    await _register(store, "fine")

    class Corrupting:
        """The store, except that it reads the broken schedule's expression as nonsense."""

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        async def get_due_schedules(
            self, now: datetime, *, limit: int = 100
        ) -> list[ScheduleRecord]:
            due = await store.get_due_schedules(now, limit=limit)
            return [
                ScheduleRecord(**{**s.to_dict(), "cron_expression": "nonsense"})
                if s.schedule_name == "broken"
                else s
                for s in due
            ]

    runner = ScheduleRunner(builder, Corrupting())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ruvon.scheduler"):
        started = await runner.run_once(now=ONE)
    assert [run.schedule_name for run in started] == ["fine"]
    assert any("broken" in record.getMessage() for record in caplog.records)
    assert (await _get(store, "broken")).next_run_at is None  # not due again, not started
    assert (await _get(store, "broken")).run_count == 0


async def test_automate_start_runs_the_first_step_once(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    await _register(store, "auto", workflow_type="AutoNightly")
    started = await ScheduleRunner(builder).run_once(now=ONE)
    assert len(started) == 1
    workflow = await builder.load_workflow(started[0].workflow_id)
    assert workflow.state.visited == ["Tick"]
    assert _ticks() == [workflow.id]


async def test_the_runner_uses_the_builders_store_and_checks_now(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    await _register(store, "s")
    runner = ScheduleRunner(builder)
    with pytest.raises(ValueError, match="now"):
        await runner.run_once(now=datetime(2030, 1, 1, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValueError, match="batch_size"):
        ScheduleRunner(builder, batch_size=0)
    # A batch smaller than what is due: the call reads on until nothing new is due.
    for name in ("t", "u", "v"):
        await _register(store, name)
    started = await ScheduleRunner(builder, store, batch_size=2).run_once(now=ONE)
    assert sorted(run.schedule_name for run in started) == ["s", "t", "u", "v"]


async def test_run_forever_until_stopped(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    # Due long ago, so the runner's own clock finds it due at once.
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    await store.register_scheduled_workflow("s", "Nightly", HOURLY, {"order_id": "s"}, now=long_ago)
    runner = ScheduleRunner(builder)
    task = asyncio.create_task(runner.run_forever(interval_seconds=0.01))
    for _ in range(1000):
        if (await _get(store, "s")).run_count:
            break
        await asyncio.sleep(0.01)
    runner.stop()
    await asyncio.wait_for(task, timeout=10)
    assert (await _get(store, "s")).run_count == 1
    assert len(steps.TICKS) == 1
    with pytest.raises(ValueError, match="interval_seconds"):
        await runner.run_forever(interval_seconds=0)


# -- the CRON_SCHEDULE step --------------------------------------------------------------------


async def test_cron_schedule_step_registers_and_the_runner_fires_it(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    setup = await builder.create_workflow("Setup", {"order_id": "X7", "amount": 21})
    result, _ = await setup.next_step()
    assert setup.status is WorkflowStatus.COMPLETED

    schedule = await _get(store, "nightly-X7")
    assert schedule.workflow_type == "Nightly"
    assert schedule.cron_expression == "0 2 * * *"
    assert schedule.initial_data == {"order_id": "X7-night", "amount": 42, "customer": "Setup"}
    assert schedule.enabled is True
    assert schedule.next_run_at is not None
    assert (schedule.next_run_at.hour, schedule.next_run_at.minute) == (2, 0)
    assert result == {
        "schedule_name": "nightly-X7",
        "next_run_at": schedule.next_run_at.isoformat(),
    }

    # Running the setup again (another workflow) replaces the schedule, keeping its fire time.
    again = await builder.create_workflow("Setup", {"order_id": "X7", "amount": 1})
    await again.next_step()
    replaced = await _get(store, "nightly-X7")
    assert replaced.initial_data["amount"] == 2
    assert replaced.next_run_at == schedule.next_run_at
    assert len(await store.list_scheduled_workflows()) == 1

    started = await ScheduleRunner(builder).run_once(now=schedule.next_run_at)
    assert [run.schedule_name for run in started] == ["nightly-X7"]
    nightly = await builder.load_workflow(started[0].workflow_id)
    assert nightly.state.order_id == "X7-night" and nightly.state.amount == 2
    assert nightly.state.customer == "Setup"
    assert nightly.state.visited == ["Tick"]


async def test_cron_schedule_step_default_name(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    setup = await builder.create_workflow("SetupDefault", {"order_id": "D1"})
    result, _ = await setup.next_step()
    name = f"sched_Nightly_{setup.id}"
    assert result["schedule_name"] == name
    schedule = await _get(store, name)
    assert schedule.cron_expression == "*/15 * * * *"
    assert schedule.initial_data == {"order_id": setup.id}


async def test_cron_schedule_step_with_an_invalid_expression_fails(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    setup = await builder.create_workflow(
        "SetupFromState", {"order_id": "B1", "note": "every night at two"}
    )
    with pytest.raises(ValueError, match="'every night at two'") as caught:
        await setup.next_step()
    assert "CRON_SCHEDULE step 'Plan'" in str(caught.value)
    assert setup.status is WorkflowStatus.FAILED
    assert await store.list_scheduled_workflows() == []

    fine = await builder.create_workflow("SetupFromState", {"order_id": "B2", "note": "@hourly"})
    await fine.next_step()
    assert [s.cron_expression for s in await store.list_scheduled_workflows()] == ["@hourly"]


async def test_a_literal_invalid_expression_fails_when_the_file_loads(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    with pytest.raises(DefinitionError) as caught:
        await builder.create_workflow("BadSetup", {"order_id": "B1"})
    message = str(caught.value)
    assert "'every night at two'" in message and "Plan" in message
    assert "cron_expression" in message
    assert await store.count_workflows() == 0
