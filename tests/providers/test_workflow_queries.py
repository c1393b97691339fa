"""The query API: ``list_workflows`` and ``count_workflows`` on every store, and through the
builder. The filters of ``test_persistence_compliance.test_list_filters`` are checked there;
this module covers organisations, creation-time ranges, order, paging and argument checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ruvon.builder import WorkflowBuilder
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider, WorkflowCommit
from tests.providers.test_persistence_compliance import make_record, make_update

UTC = timezone.utc
T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


async def _inbox(store: PersistenceProvider) -> None:
    """Workflows of two organisations, created a minute apart (created_at = T0 + n minutes)."""
    rows: list[tuple[str, dict[str, Any]]] = [
        ("a-0", {"org_id": "acme", "status": "WAITING_HUMAN", "workflow_type": "Loan"}),
        ("a-1", {"org_id": "acme", "status": "COMPLETED", "workflow_type": "Loan"}),
        ("b-2", {"org_id": "bolt", "status": "WAITING_HUMAN", "workflow_type": "Loan"}),
        ("a-3", {"org_id": "acme", "status": "WAITING_HUMAN", "workflow_type": "Loan"}),
        ("a-4", {"org_id": "acme", "status": "WAITING_HUMAN", "workflow_type": "Refund"}),
        ("x-5", {"status": "WAITING_HUMAN", "workflow_type": "Loan"}),
        ("a-6", {"org_id": "acme", "status": "WAITING_HUMAN", "workflow_type": "Loan"}),
    ]
    for minute, (workflow_id, fields) in enumerate(rows):
        await store.create_workflow(make_record(workflow_id, created_at=at(minute), **fields))


async def _ids(store: PersistenceProvider, **filters: Any) -> list[str]:
    return [record.id for record in await store.list_workflows(**filters)]


async def test_org_filter(store: PersistenceProvider) -> None:
    await _inbox(store)

    assert await _ids(store, org_id="acme") == ["a-6", "a-4", "a-3", "a-1", "a-0"]
    assert await _ids(store, org_id="bolt") == ["b-2"]
    assert await _ids(store, org_id="nobody") == []
    assert await store.count_workflows(org_id="acme") == 5
    assert await store.count_workflows(org_id="nobody") == 0


async def test_created_range_is_after_inclusive_before_exclusive(
    store: PersistenceProvider,
) -> None:
    await _inbox(store)

    assert await _ids(store, created_after=at(3)) == ["a-6", "x-5", "a-4", "a-3"]
    assert await _ids(store, created_before=at(3)) == ["b-2", "a-1", "a-0"]
    assert await _ids(store, created_after=at(1), created_before=at(4)) == ["a-3", "b-2", "a-1"]
    assert await _ids(store, created_after=at(2.5), created_before=at(3.5)) == ["a-3"]
    assert await _ids(store, created_after=at(3), created_before=at(3)) == []
    assert await store.count_workflows(created_after=at(1), created_before=at(4)) == 3
    assert await store.count_workflows(created_after=at(7)) == 0


async def test_created_range_compares_instants_across_time_zones(
    store: PersistenceProvider,
) -> None:
    await _inbox(store)
    berlin = timezone(timedelta(hours=1))
    new_york = timezone(timedelta(hours=-5))

    # 10:03 in Berlin and 04:03 in New York are 09:03 UTC.
    assert await _ids(store, created_after=at(3).astimezone(berlin)) == [
        "a-6",
        "x-5",
        "a-4",
        "a-3",
    ]
    assert await _ids(store, created_before=at(3).astimezone(new_york)) == ["b-2", "a-1", "a-0"]
    assert await store.count_workflows(created_after=at(3).astimezone(berlin)) == 4


async def test_inbox_query_with_count_for_paging(store: PersistenceProvider) -> None:
    await _inbox(store)
    inbox: dict[str, Any] = {"status": "WAITING_HUMAN", "workflow_type": "Loan", "org_id": "acme"}

    assert await store.count_workflows(**inbox) == 3
    assert await _ids(store, **inbox, limit=2) == ["a-6", "a-3"]
    assert await _ids(store, **inbox, limit=2, offset=2) == ["a-0"]
    assert await _ids(store, **inbox, limit=2, offset=4) == []
    assert await store.count_workflows(**inbox, created_after=at(1)) == 2
    assert await _ids(store, **inbox, created_after=at(1), created_before=at(6)) == ["a-3"]


async def test_count_agrees_with_list_for_every_filter(store: PersistenceProvider) -> None:
    await _inbox(store)
    await store.create_workflow(
        make_record("c-7", parent_execution_id="a-0", owner_id="ann", created_at=at(7))
    )
    cases: list[dict[str, Any]] = [
        {},
        {"status": "WAITING_HUMAN"},
        {"status": ["COMPLETED", "ACTIVE"]},
        {"status": []},
        {"workflow_type": "Refund"},
        {"owner_id": "ann"},
        {"parent_workflow_id": "a-0"},
        {"org_id": "acme", "status": "WAITING_HUMAN"},
        {"created_after": at(2), "created_before": at(6), "workflow_type": "Loan"},
    ]
    for filters in cases:
        found = await store.list_workflows(**filters, limit=1000)
        assert await store.count_workflows(**filters) == len(found), filters


async def test_newest_first_follows_created_at_not_insertion(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("middle", created_at=at(5)))
    await store.create_workflow(make_record("oldest", created_at=at(1)))
    await store.create_workflow(make_record("newest", created_at=at(9)))
    await store.create_workflow(make_record("tie-first", created_at=at(5)))
    await store.create_workflow(make_record("tie-second", created_at=at(5)))

    expected = ["newest", "tie-second", "tie-first", "middle", "oldest"]
    assert await _ids(store) == expected
    assert await _ids(store, limit=2, offset=1) == ["tie-second", "tie-first"]
    await store.commit_workflow(WorkflowCommit(make_update("oldest"), expected_version=1))
    assert await _ids(store) == expected


async def test_naive_created_at_is_taken_as_utc(store: PersistenceProvider) -> None:
    # Stored times are UTC everywhere; a naive one given at create time is read as UTC.
    await store.create_workflow(make_record("naive", created_at=at(4).replace(tzinfo=None)))
    record = await store.load_workflow("naive")
    assert record is not None and record.created_at == at(4)
    assert await _ids(store, created_after=at(4), created_before=at(5)) == ["naive"]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"limit": -1}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": 5, "offset": -10}, "offset"),
    ],
)
async def test_negative_page_is_rejected(
    store: PersistenceProvider, arguments: dict[str, int], named: str
) -> None:
    await _inbox(store)
    with pytest.raises(ValueError, match=named):
        await store.list_workflows(**arguments)


@pytest.mark.parametrize("name", ["created_after", "created_before"])
async def test_naive_datetime_filters_are_rejected(store: PersistenceProvider, name: str) -> None:
    naive = {name: datetime(2025, 3, 1, 9, 0)}  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match=name):
        await store.list_workflows(**naive)
    with pytest.raises(ValueError, match=name):
        await store.count_workflows(**naive)


async def test_count_rejects_unknown_status(store: PersistenceProvider) -> None:
    with pytest.raises(ValueError):
        await store.count_workflows(status="NOT_A_STATUS")


async def test_empty_store_counts_zero(store: PersistenceProvider) -> None:
    assert await store.count_workflows() == 0
    assert await store.count_workflows(status="ACTIVE", org_id="acme") == 0


# -- through the builder ---------------------------------------------------------------------


async def test_builder_lists_and_counts_with_its_provider(
    store: PersistenceProvider, tmp_path: Path
) -> None:
    await _inbox(store)
    builder = WorkflowBuilder(workflow_registry={}, config_dir=tmp_path, persistence_provider=store)
    inbox: dict[str, Any] = {"status": "WAITING_HUMAN", "workflow_type": "Loan", "org_id": "acme"}

    page = await builder.list_workflows(**inbox, limit=2)
    assert [record.id for record in page] == ["a-6", "a-3"]
    assert page[0].org_id == "acme" and page[0].created_at == at(6)
    assert [r.id for r in await builder.list_workflows(**inbox, limit=2, offset=2)] == ["a-0"]
    assert await builder.count_workflows(**inbox) == 3
    assert await builder.count_workflows(created_after=at(5), created_before=at(7)) == 2
    assert [r.id for r in await builder.list_workflows(owner_id="nobody")] == []
    assert [r.id for r in await builder.list_workflows(parent_workflow_id="a-0")] == []
    assert len(await builder.list_workflows()) == 7
    with pytest.raises(ValueError, match="limit"):
        await builder.list_workflows(limit=-1)


async def test_builder_initializes_a_provider_passed_per_call(tmp_path: Path) -> None:
    default = MemoryPersistenceProvider()
    await default.create_workflow(make_record("in-default"))
    other = SQLitePersistenceProvider(tmp_path / "other.db", auto_init=False)
    builder = WorkflowBuilder(
        workflow_registry={}, config_dir=tmp_path, persistence_provider=default
    )
    try:
        # Not initialized yet: the builder does it, as load_workflow does.
        assert await builder.list_workflows(persistence_provider=other) == []
        assert await builder.count_workflows(persistence_provider=other) == 0
        await other.create_workflow(make_record("in-other", org_id="acme"))
        listed = await builder.list_workflows(org_id="acme", persistence_provider=other)
        assert [record.id for record in listed] == ["in-other"]
        assert await builder.count_workflows(org_id="acme", persistence_provider=other) == 1
        assert [record.id for record in await builder.list_workflows()] == ["in-default"]
        assert await builder.count_workflows() == 1
    finally:
        await builder.close()
        await other.close()
