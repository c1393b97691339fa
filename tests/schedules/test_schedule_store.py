"""The schedule part of the persistence contract, checked on every provider (``store``: memory,
SQLite, PostgreSQL): register (an upsert by name), read, claim a fire time, pause, delete."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.providers.persistence import PersistenceProvider, ScheduleRecord, ScheduleStore
from ruvon.providers.schedules import next_fire_time

UTC = timezone.utc
T0 = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
HOURLY = "0 * * * *"

FIELDS = [
    "schedule_name",
    "workflow_type",
    "cron_expression",
    "initial_data",
    "enabled",
    "next_run_at",
    "last_run_at",
    "run_count",
    "created_at",
    "updated_at",
]


async def _get(store: PersistenceProvider, name: str) -> ScheduleRecord:
    schedule = await store.get_scheduled_workflow(name)
    assert schedule is not None, f"schedule {name!r} is missing"
    return schedule


def _without_times(schedule: ScheduleRecord) -> ScheduleRecord:
    """The record without the times the store sets itself (its own clock)."""
    return dataclasses.replace(schedule, created_at=None, updated_at=None)


def test_every_provider_stores_schedules(store: PersistenceProvider) -> None:
    assert isinstance(store, ScheduleStore)
    assert isinstance(store, PersistenceProvider)


async def test_register_returns_what_is_stored(store: PersistenceProvider) -> None:
    data = {"region": "eu", "limits": {"max": 3}, "tags": ["a", "b"], "city": "Zürich ✓"}
    schedule = await store.register_scheduled_workflow(
        schedule_name="nightly",
        workflow_type="Report",
        cron_expression="30 2 * * *",
        initial_data=data,
        now=T0,
    )
    assert schedule.schedule_name == "nightly"
    assert schedule.workflow_type == "Report"
    assert schedule.cron_expression == "30 2 * * *"
    assert schedule.initial_data == data
    assert schedule.enabled is True
    assert schedule.next_run_at == datetime(2030, 1, 1, 2, 30, tzinfo=UTC)
    assert schedule.next_run_at.utcoffset() == timedelta(0)
    assert schedule.last_run_at is None
    assert schedule.run_count == 0
    assert schedule.created_at is not None and schedule.created_at.tzinfo is not None
    assert schedule.updated_at is not None
    assert await _get(store, "nightly") == schedule


async def test_list_shape_and_order(store: PersistenceProvider) -> None:
    for name in ("b-weekly", "a-daily", "c-hourly"):
        await store.register_scheduled_workflow(name, "Report", HOURLY, now=T0)
    listed = await store.list_scheduled_workflows()
    assert [schedule.schedule_name for schedule in listed] == ["a-daily", "b-weekly", "c-hourly"]
    assert [field.name for field in dataclasses.fields(ScheduleRecord)] == FIELDS
    assert list(listed[0].to_dict()) == FIELDS
    assert listed[0].initial_data == {}


async def test_empty_store(store: PersistenceProvider) -> None:
    assert await store.list_scheduled_workflows() == []
    assert await store.get_scheduled_workflow("nope") is None
    assert await store.get_due_schedules(T0) == []
    assert await store.delete_scheduled_workflow("nope") is False
    assert await store.set_schedule_enabled("nope", False) is None
    assert not await store.mark_schedule_run("nope", due_at=T0, next_run_at=T0, run_at=T0)


async def test_register_is_an_upsert_by_name(store: PersistenceProvider) -> None:
    first = await store.register_scheduled_workflow("s", "Report", HOURLY, {"v": 1}, now=T0)
    due = first.next_run_at
    assert due is not None
    assert await store.mark_schedule_run(
        "s", due_at=due, next_run_at=due + timedelta(hours=1), run_at=due
    )
    # Same expression: the fire time, the count and the creation time are kept.
    later = T0 + timedelta(minutes=90)
    again = await store.register_scheduled_workflow("s", "Digest", HOURLY, {"v": 2}, now=later)
    assert (again.workflow_type, again.initial_data) == ("Digest", {"v": 2})
    assert again.next_run_at == due + timedelta(hours=1)
    assert (again.run_count, again.last_run_at) == (1, due)
    assert again.created_at == first.created_at
    # A new expression: the first fire time of the new one after ``now``.
    changed = await store.register_scheduled_workflow("s", "Digest", "0 12 * * *", now=later)
    assert changed.next_run_at == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert changed.initial_data == {}
    assert changed.run_count == 1
    assert len(await store.list_scheduled_workflows()) == 1


async def test_registering_an_enabled_schedule_again_keeps_a_missed_fire(
    store: PersistenceProvider,
) -> None:
    # A CRON_SCHEDULE step registers on every run: that must not skip a due fire time.
    await store.register_scheduled_workflow("s", "Report", HOURLY, now=T0)
    later = T0 + timedelta(hours=5)
    again = await store.register_scheduled_workflow("s", "Report", HOURLY, now=later)
    assert again.next_run_at == T0 + timedelta(hours=1)
    assert [s.schedule_name for s in await store.get_due_schedules(later)] == ["s"]


async def test_enabling_through_register_skips_what_was_missed(store: PersistenceProvider) -> None:
    await store.register_scheduled_workflow("s", "Report", HOURLY, enabled=False, now=T0)
    disabled = await _get(store, "s")
    assert disabled.enabled is False
    assert disabled.next_run_at == T0 + timedelta(hours=1)
    later = T0 + timedelta(hours=5, minutes=10)
    enabled = await store.register_scheduled_workflow("s", "Report", HOURLY, now=later)
    assert enabled.enabled is True
    assert enabled.next_run_at == T0 + timedelta(hours=6)


@pytest.mark.parametrize("expression", ["every night", "61 * * * *", "", "* * *", "0 0 30 2 *"])
async def test_an_invalid_cron_expression_stores_nothing(
    store: PersistenceProvider, expression: str
) -> None:
    with pytest.raises(ValueError, match="cron expression") as caught:
        await store.register_scheduled_workflow("bad", "Report", expression, now=T0)
    assert repr(expression) in str(caught.value)
    assert await store.list_scheduled_workflows() == []


async def test_an_invalid_cron_expression_leaves_the_schedule_as_it_was(
    store: PersistenceProvider,
) -> None:
    kept = await store.register_scheduled_workflow("s", "Report", HOURLY, {"v": 1}, now=T0)
    with pytest.raises(ValueError, match="'nonsense'"):
        await store.register_scheduled_workflow("s", "Other", "nonsense", {"v": 2}, now=T0)
    assert await _get(store, "s") == kept


async def test_invalid_arguments(store: PersistenceProvider) -> None:
    with pytest.raises(ValueError, match="schedule_name"):
        await store.register_scheduled_workflow("", "Report", HOURLY)
    with pytest.raises(ValueError, match="workflow_type"):
        await store.register_scheduled_workflow("s", " ", HOURLY)
    naive = datetime(2030, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="now"):
        await store.register_scheduled_workflow("s", "Report", HOURLY, now=naive)
    with pytest.raises(ValueError, match="now"):
        await store.get_due_schedules(naive)
    with pytest.raises(ValueError, match="limit"):
        await store.get_due_schedules(T0, limit=-1)
    with pytest.raises(TypeError):
        await store.register_scheduled_workflow("s", "Report", HOURLY, {"x": object()})
    assert await store.list_scheduled_workflows() == []
    await store.register_scheduled_workflow("s", "Report", HOURLY, now=T0)
    with pytest.raises(ValueError, match="due_at"):
        await store.mark_schedule_run("s", due_at=naive, next_run_at=None, run_at=T0)


async def test_registering_without_now_uses_the_current_time(store: PersistenceProvider) -> None:
    schedule = await store.register_scheduled_workflow("s", "Report", "* * * * *")
    assert schedule.next_run_at is not None
    assert schedule.next_run_at.second == 0 and schedule.next_run_at.microsecond == 0


async def test_due_schedules(store: PersistenceProvider) -> None:
    await store.register_scheduled_workflow("hourly", "Report", HOURLY, now=T0)  # 01:00
    await store.register_scheduled_workflow("half", "Report", "30 * * * *", now=T0)  # 00:30
    await store.register_scheduled_workflow("paused", "Report", "15 * * * *", now=T0)
    await store.set_schedule_enabled("paused", False)
    await store.register_scheduled_workflow("also-half", "Report", "30 * * * *", now=T0)

    def names(schedules: list[ScheduleRecord]) -> list[str]:
        return [schedule.schedule_name for schedule in schedules]

    assert names(await store.get_due_schedules(T0 + timedelta(minutes=29))) == []
    half_past = T0 + timedelta(minutes=30)  # due exactly at its fire time
    assert names(await store.get_due_schedules(half_past)) == ["also-half", "half"]
    later = T0 + timedelta(hours=2)
    assert names(await store.get_due_schedules(later)) == ["also-half", "half", "hourly"]
    assert names(await store.get_due_schedules(later, limit=2)) == ["also-half", "half"]
    # Any timezone names the same moment.
    plus_two = timezone(timedelta(hours=2))
    assert names(await store.get_due_schedules(half_past.astimezone(plus_two))) == [
        "also-half",
        "half",
    ]


async def test_mark_schedule_run_claims_a_fire_time_once(store: PersistenceProvider) -> None:
    schedule = await store.register_scheduled_workflow("s", "Report", HOURLY, now=T0)
    due = schedule.next_run_at
    assert due is not None
    run_at = due + timedelta(seconds=3)
    following = due + timedelta(hours=1)
    assert await store.mark_schedule_run("s", due_at=due, next_run_at=following, run_at=run_at)
    assert not await store.mark_schedule_run("s", due_at=due, next_run_at=following, run_at=run_at)
    marked = await _get(store, "s")
    assert (marked.next_run_at, marked.last_run_at, marked.run_count) == (following, run_at, 1)
    # A fire time that started nothing advances the schedule without counting a run.
    assert await store.mark_schedule_run(
        "s", due_at=following, next_run_at=None, run_at=following, started=False
    )
    skipped = await _get(store, "s")
    assert (skipped.next_run_at, skipped.last_run_at, skipped.run_count) == (None, run_at, 1)
    assert await store.get_due_schedules(T0 + timedelta(days=365)) == []


async def test_concurrent_claims_of_one_fire_time(store: PersistenceProvider) -> None:
    schedule = await store.register_scheduled_workflow("s", "Report", HOURLY, now=T0)
    due = schedule.next_run_at
    assert due is not None
    claims = await asyncio.gather(
        *(
            store.mark_schedule_run(
                "s", due_at=due, next_run_at=due + timedelta(hours=1), run_at=due
            )
            for _ in range(8)
        )
    )
    assert sorted(claims) == [False] * 7 + [True]
    assert (await _get(store, "s")).run_count == 1


@pytest.mark.postgres
async def test_claims_from_separate_pools(
    postgres_store: PostgresPersistenceProvider, postgres_url: str, postgres_schema: str
) -> None:
    """Several PostgreSQL pools (as several processes have) claim one fire time: one wins."""
    names = [f"s{i}" for i in range(10)]
    for name in names:
        await postgres_store.register_scheduled_workflow(name, "Report", HOURLY, now=T0)
    due = T0 + timedelta(hours=1)
    others = [
        PostgresPersistenceProvider(
            postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=4
        )
        for _ in range(3)
    ]
    for other in others:
        await other.initialize()
    try:
        claims = await asyncio.gather(
            *(
                provider.mark_schedule_run(
                    name, due_at=due, next_run_at=due + timedelta(hours=1), run_at=due
                )
                for name in names
                for provider in (postgres_store, *others)
            )
        )
    finally:
        for other in others:
            await other.close()
    assert sum(claims) == len(names)
    for schedule in await postgres_store.list_scheduled_workflows():
        assert schedule.run_count == 1


async def test_pause_and_resume(store: PersistenceProvider) -> None:
    await store.register_scheduled_workflow("s", "Report", HOURLY, {"v": 1}, now=T0)
    paused = await store.set_schedule_enabled("s", False, now=T0)
    assert paused is not None and paused.enabled is False
    assert paused.next_run_at == T0 + timedelta(hours=1)
    assert await store.get_due_schedules(T0 + timedelta(days=1)) == []
    # Pausing again changes nothing that matters.
    twice = await store.set_schedule_enabled("s", False, now=T0 + timedelta(days=2))
    assert twice is not None and _without_times(twice) == _without_times(paused)
    later = T0 + timedelta(hours=7, minutes=5)
    resumed = await store.set_schedule_enabled("s", True, now=later)
    assert resumed is not None and resumed.enabled is True
    assert resumed.next_run_at == T0 + timedelta(hours=8)  # what was missed is skipped
    assert resumed.initial_data == {"v": 1}
    # Resuming an enabled schedule keeps its fire time.
    again = await store.set_schedule_enabled("s", True, now=later + timedelta(days=1))
    assert again is not None and again.next_run_at == resumed.next_run_at
    assert await _get(store, "s") == again


async def test_delete(store: PersistenceProvider) -> None:
    await store.register_scheduled_workflow("s", "Report", HOURLY, now=T0)
    await store.register_scheduled_workflow("t", "Report", HOURLY, now=T0)
    assert await store.delete_scheduled_workflow("s") is True
    assert await store.delete_scheduled_workflow("s") is False
    assert [s.schedule_name for s in await store.list_scheduled_workflows()] == ["t"]


async def test_returned_values_are_copies(store: PersistenceProvider) -> None:
    data = {"items": [1, 2]}
    schedule = await store.register_scheduled_workflow("s", "Report", HOURLY, data, now=T0)
    data["items"].append(3)
    schedule.initial_data["items"].append(4)
    assert (await _get(store, "s")).initial_data == {"items": [1, 2]}


def test_next_fire_time() -> None:
    assert next_fire_time("*/15 * * * *", T0) == T0 + timedelta(minutes=15)
    assert next_fire_time("@daily", T0 + timedelta(seconds=1)) == T0 + timedelta(days=1)
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2030, 1, 1, 2, 0, tzinfo=plus_two)  # 00:00 UTC
    assert next_fire_time("0 1 * * *", local) == datetime(2030, 1, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="'nope'"):
        next_fire_time("nope", T0)
