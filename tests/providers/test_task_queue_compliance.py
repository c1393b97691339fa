"""The task queue part of the persistence contract, checked on every provider.

Each test takes ``store`` and runs on memory, SQLite and PostgreSQL. The one rule that matters
most: two concurrent claimers never get the same task (on PostgreSQL also across pools), and
of concurrent ``claim_task`` calls of one task exactly one wins (on the SQL stores also across
providers sharing the database).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ruvon.errors import PersistenceError, TaskNotFoundError, WorkflowNotFoundError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider, TaskQueue, TaskRecord
from tests.providers.test_persistence_compliance import make_record

UTC = timezone.utc


async def _workflow(store: PersistenceProvider, workflow_id: str = "wf-1") -> str:
    await store.create_workflow(make_record(workflow_id))
    return workflow_id


async def _get(store: PersistenceProvider, task_id: str) -> TaskRecord:
    task = await store.get_task_record(task_id)
    assert task is not None, f"task {task_id!r} is missing"
    return task


async def _drain(store: PersistenceProvider, worker_id: str, claimed: list[TaskRecord]) -> None:
    """Claim until the queue is empty, yielding to the other claimers in between."""
    while (task := await store.claim_next_task(worker_id)) is not None:
        claimed.append(task)
        await asyncio.sleep(0)


def test_every_provider_is_a_task_queue(store: PersistenceProvider) -> None:
    assert isinstance(store, TaskQueue)
    assert isinstance(store, PersistenceProvider)


async def test_create_and_get_round_trip(store: PersistenceProvider) -> None:
    await _workflow(store)
    data = {"order": {"id": 7, "items": ["a", "b"]}, "city": "Zürich ✓", "ratio": 0.25}
    task = await store.create_task_record("wf-1", "charge", 2, task_data=data, max_retries=5)
    assert str(uuid.UUID(task.task_id)) == task.task_id
    assert task.execution_id == "wf-1"
    assert (task.step_name, task.step_index) == ("charge", 2)
    assert task.status == "PENDING"
    assert task.worker_id is None
    assert (task.claimed_at, task.started_at, task.completed_at) == (None, None, None)
    assert (task.retry_count, task.max_retries) == (0, 5)
    assert task.last_error is None
    assert task.task_data == data
    assert task.result is None
    assert task.idempotency_key is None
    assert task.created_at is not None and task.created_at.tzinfo is not None
    assert task.updated_at is not None
    assert await _get(store, task.task_id) == task


async def test_defaults(store: PersistenceProvider) -> None:
    await _workflow(store)
    task = await store.create_task_record("wf-1", "a", 0)
    assert task.task_data == {}
    assert task.max_retries == 3
    assert await _get(store, task.task_id) == task


async def test_unknown_task_is_none(store: PersistenceProvider) -> None:
    assert await store.get_task_record(str(uuid.uuid4())) is None


async def test_returned_values_are_copies(store: PersistenceProvider) -> None:
    await _workflow(store)
    data = {"items": [1, 2]}
    task = await store.create_task_record("wf-1", "a", 0, task_data=data)
    data["items"].append(3)
    task.task_data["items"].append(4)
    assert (await _get(store, task.task_id)).task_data == {"items": [1, 2]}


async def test_idempotency_key_returns_the_existing_task(store: PersistenceProvider) -> None:
    await _workflow(store)
    first = await store.create_task_record(
        "wf-1", "a", 0, idempotency_key="k-1", task_data={"a": 1}
    )
    again = await store.create_task_record("wf-1", "b", 1, idempotency_key="k-1", task_data={})
    assert again == first
    other = await store.create_task_record("wf-1", "a", 0, idempotency_key="k-2")
    assert other.task_id != first.task_id
    # Nothing was written by the second call: only two tasks can be claimed.
    assert await store.claim_next_task("w") is not None
    assert await store.claim_next_task("w") is not None
    assert await store.claim_next_task("w") is None


async def test_unknown_workflow_is_rejected(store: PersistenceProvider) -> None:
    with pytest.raises(WorkflowNotFoundError) as caught:
        await store.create_task_record("nope", "a", 0)
    assert caught.value.workflow_id == "nope"
    with pytest.raises(WorkflowNotFoundError):
        await store.create_task_record("nope", "a", 0, idempotency_key="k")
    assert await store.claim_next_task("w") is None


async def test_claim_takes_the_oldest_first(store: PersistenceProvider) -> None:
    await _workflow(store)
    created = [await store.create_task_record("wf-1", f"s{i}", i) for i in range(4)]
    before = datetime.now(UTC)
    claimed = [await store.claim_next_task("worker-a") for _ in range(4)]
    assert [task.task_id for task in claimed if task] == [task.task_id for task in created]
    for task in claimed:
        assert task is not None
        assert task.status == "CLAIMED"
        assert task.worker_id == "worker-a"
        assert task.claimed_at is not None and task.claimed_at >= before
        assert task.updated_at == task.claimed_at
        assert await _get(store, task.task_id) == task
    assert await store.claim_next_task("worker-a") is None


async def test_claim_filters_on_step_name(store: PersistenceProvider) -> None:
    await _workflow(store)
    a1 = await store.create_task_record("wf-1", "a", 0)
    b1 = await store.create_task_record("wf-1", "b", 1)
    a2 = await store.create_task_record("wf-1", "a", 2)
    first = await store.claim_next_task("w", step_name="b")
    assert first is not None and first.task_id == b1.task_id
    assert await store.claim_next_task("w", step_name="b") is None
    assert await store.claim_next_task("w", step_name="missing") is None
    second = await store.claim_next_task("w", step_name="a")
    assert second is not None and second.task_id == a1.task_id
    third = await store.claim_next_task("w")
    assert third is not None and third.task_id == a2.task_id


async def test_claim_on_empty_queue_is_none(store: PersistenceProvider) -> None:
    assert await store.claim_next_task("w") is None
    assert await store.claim_next_task("w", step_name="a") is None


async def test_claim_skips_tasks_that_are_not_pending(store: PersistenceProvider) -> None:
    await _workflow(store)
    task = await store.create_task_record("wf-1", "a", 0)
    await store.update_task_status(task.task_id, "COMPLETED")
    assert await store.claim_next_task("w") is None
    # Put back to PENDING (e.g. a retry), it can be claimed again.
    await store.update_task_status(task.task_id, "PENDING")
    again = await store.claim_next_task("w2")
    assert again is not None and again.worker_id == "w2"


async def test_concurrent_claimers_never_share_a_task(store: PersistenceProvider) -> None:
    await _workflow(store)
    created = {(await store.create_task_record("wf-1", "a", i)).task_id for i in range(20)}
    claimed: list[TaskRecord] = []
    await asyncio.gather(*(_drain(store, f"worker-{n}", claimed) for n in range(5)))
    ids = [task.task_id for task in claimed]
    assert len(ids) == len(set(ids)) == 20
    assert set(ids) == created
    for task in claimed:
        stored = await _get(store, task.task_id)
        assert stored.status == "CLAIMED"
        assert stored.worker_id == task.worker_id


async def test_status_updates_set_their_timestamps(store: PersistenceProvider) -> None:
    await _workflow(store)
    created = await store.create_task_record("wf-1", "a", 0)
    claimed = await store.claim_next_task("w")
    assert claimed is not None
    running = await store.update_task_status(created.task_id, "RUNNING")
    assert running.status == "RUNNING"
    assert running.worker_id == "w"
    assert running.claimed_at == claimed.claimed_at
    assert running.started_at is not None
    assert claimed.claimed_at is not None and running.started_at >= claimed.claimed_at
    assert running.completed_at is None
    assert running.updated_at == running.started_at
    done = await store.update_task_status(
        created.task_id, "COMPLETED", result={"charged": 10.5, "ids": [1, 2]}
    )
    assert done.status == "COMPLETED"
    assert done.started_at == running.started_at
    assert done.completed_at is not None and done.completed_at >= running.started_at
    assert done.result == {"charged": 10.5, "ids": [1, 2]}
    assert done.retry_count == 0
    assert done.last_error is None
    assert await _get(store, created.task_id) == done


async def test_failed_counts_a_retry_and_keeps_the_error(store: PersistenceProvider) -> None:
    await _workflow(store)
    task = await store.create_task_record("wf-1", "a", 0)
    failed = await store.update_task_status(task.task_id, "FAILED", error_message="boom")
    assert failed.status == "FAILED"
    assert failed.retry_count == 1
    assert failed.last_error == "boom"
    assert failed.completed_at is not None
    await store.update_task_status(task.task_id, "PENDING")
    again = await store.update_task_status(task.task_id, "FAILED", error_message="boom again")
    assert again.retry_count == 2
    assert again.last_error == "boom again"
    # An update without a result or an error keeps those already stored.
    kept = await store.update_task_status(task.task_id, "PENDING")
    assert kept.last_error == "boom again"
    assert kept.retry_count == 2
    assert await _get(store, task.task_id) == kept


async def test_invalid_status_is_rejected(store: PersistenceProvider) -> None:
    await _workflow(store)
    task = await store.create_task_record("wf-1", "a", 0)
    for status in ("DONE", "pending", ""):
        with pytest.raises(ValueError, match="Invalid task status"):
            await store.update_task_status(task.task_id, status)
    assert await _get(store, task.task_id) == task


async def test_unknown_task_id_is_rejected(store: PersistenceProvider) -> None:
    task_id = str(uuid.uuid4())
    with pytest.raises(TaskNotFoundError) as caught:
        await store.update_task_status(task_id, "RUNNING")
    assert caught.value.task_id == task_id
    assert isinstance(caught.value, PersistenceError)
    assert isinstance(caught.value, ValueError)


async def test_deleting_the_workflow_deletes_its_tasks(store: PersistenceProvider) -> None:
    await _workflow(store, "wf-1")
    await _workflow(store, "wf-2")
    gone = await store.create_task_record("wf-1", "a", 0, idempotency_key="k-1")
    kept = await store.create_task_record("wf-2", "a", 0)
    assert await store.delete_workflow("wf-1") is True
    assert await store.get_task_record(gone.task_id) is None
    assert await store.get_task_record(kept.task_id) == kept
    # The key is free again once its task is gone.
    await _workflow(store, "wf-3")
    fresh = await store.create_task_record("wf-3", "a", 0, idempotency_key="k-1")
    assert fresh.task_id != gone.task_id
    claimed = [await store.claim_next_task("w") for _ in range(3)]
    assert {task.task_id for task in claimed if task} == {kept.task_id, fresh.task_id}


@pytest.mark.postgres
async def test_postgres_claimers_in_separate_pools_never_share_a_task(
    postgres_url: str, postgres_schema: str
) -> None:
    providers = [
        PostgresPersistenceProvider(
            postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=4
        )
        for _ in range(2)
    ]
    for provider in providers:
        await provider.initialize()
    try:
        await providers[0].create_workflow(make_record("wf-1"))
        created = set()
        for i in range(40):
            created.add((await providers[0].create_task_record("wf-1", "a", i)).task_id)
        claimed: list[TaskRecord] = []
        await asyncio.gather(*(_drain(providers[n % 2], f"worker-{n}", claimed) for n in range(8)))
        ids = [task.task_id for task in claimed]
        assert len(ids) == len(set(ids)) == 40
        assert set(ids) == created
        assert {task.worker_id for task in claimed} <= {f"worker-{n}" for n in range(8)}
    finally:
        for provider in providers:
            await provider.close()


# -- claim_task: one task, by id ---------------------------------------------------------------

FRESH = 60.0
"""A staleness threshold no claim of a test outlives."""


async def _task(store: PersistenceProvider) -> TaskRecord:
    await _workflow(store)
    return await store.create_task_record("wf-1", "charge", 0)


async def _claim(store: PersistenceProvider, task_id: str, worker_id: str) -> TaskRecord:
    claimed = await store.claim_task(task_id, worker_id, stale_after_seconds=FRESH)
    assert claimed is not None, f"{worker_id} could not claim task {task_id!r}"
    return claimed


async def test_claim_task_takes_a_pending_task(store: PersistenceProvider) -> None:
    task = await _task(store)
    before = datetime.now(UTC)
    claimed = await _claim(store, task.task_id, "worker-a")
    assert claimed.task_id == task.task_id
    assert claimed.status == "RUNNING"
    assert claimed.worker_id == "worker-a"
    assert claimed.claimed_at is not None and claimed.claimed_at >= before
    assert claimed.started_at == claimed.claimed_at
    assert claimed.updated_at == claimed.claimed_at
    assert claimed.completed_at is None
    assert (claimed.task_data, claimed.retry_count) == (task.task_data, 0)
    assert claimed.created_at == task.created_at
    assert await _get(store, task.task_id) == claimed


async def test_claim_task_refuses_another_worker_while_the_claim_is_fresh(
    store: PersistenceProvider,
) -> None:
    task = await _task(store)
    held = await _claim(store, task.task_id, "worker-a")
    assert await store.claim_task(task.task_id, "worker-b", stale_after_seconds=FRESH) is None
    assert await _get(store, task.task_id) == held
    # A task claimed by claim_next_task (CLAIMED) is held alike.
    other = await store.create_task_record("wf-1", "refund", 1)
    queued = await store.claim_next_task("worker-a", step_name="refund")
    assert queued is not None and queued.task_id == other.task_id
    assert await store.claim_task(other.task_id, "worker-b", stale_after_seconds=FRESH) is None
    assert await _get(store, other.task_id) == queued


async def test_claim_task_by_the_same_worker_renews(store: PersistenceProvider) -> None:
    task = await _task(store)
    first = await _claim(store, task.task_id, "worker-a")
    await asyncio.sleep(0.01)
    renewed = await _claim(store, task.task_id, "worker-a")
    assert renewed.status == "RUNNING"
    assert renewed.worker_id == "worker-a"
    assert renewed.claimed_at == first.claimed_at
    assert renewed.started_at == first.started_at
    assert first.updated_at is not None
    assert renewed.updated_at is not None and renewed.updated_at > first.updated_at
    assert await _get(store, task.task_id) == renewed


async def test_claim_task_runs_a_task_claimed_from_the_queue(store: PersistenceProvider) -> None:
    task = await _task(store)
    queued = await store.claim_next_task("worker-a")
    assert queued is not None and queued.task_id == task.task_id
    running = await _claim(store, task.task_id, "worker-a")
    assert running.status == "RUNNING"
    assert running.claimed_at == queued.claimed_at
    assert running.started_at is not None
    assert queued.claimed_at is not None and running.started_at >= queued.claimed_at


async def test_claim_task_takes_over_a_stale_claim(store: PersistenceProvider) -> None:
    task = await _task(store)
    dead = await _claim(store, task.task_id, "worker-a")
    await asyncio.sleep(0.3)
    taken = await store.claim_task(task.task_id, "worker-b", stale_after_seconds=0.2)
    assert taken is not None
    assert taken.status == "RUNNING"
    assert taken.worker_id == "worker-b"
    assert dead.claimed_at is not None
    assert taken.claimed_at is not None and taken.claimed_at > dead.claimed_at
    assert taken.updated_at == taken.claimed_at
    assert taken.started_at == dead.started_at  # it was started once
    assert await _get(store, task.task_id) == taken
    # The old holder, back to renew, finds the task held by a live worker.
    assert await store.claim_task(task.task_id, "worker-a", stale_after_seconds=0.2) is None
    assert await _get(store, task.task_id) == taken


async def test_claim_task_of_a_task_put_back_to_pending_is_a_new_claim(
    store: PersistenceProvider,
) -> None:
    task = await _task(store)
    first = await _claim(store, task.task_id, "worker-a")
    await store.update_task_status(task.task_id, "PENDING")
    await asyncio.sleep(0.01)
    again = await _claim(store, task.task_id, "worker-a")
    assert first.claimed_at is not None
    assert again.claimed_at is not None and again.claimed_at > first.claimed_at
    assert again.status == "RUNNING"


@pytest.mark.parametrize("status", ["COMPLETED", "FAILED"])
async def test_claim_task_of_a_finished_task_is_none(
    store: PersistenceProvider, status: str
) -> None:
    task = await _task(store)
    await _claim(store, task.task_id, "worker-a")
    finished = await store.update_task_status(task.task_id, status)
    for worker_id in ("worker-a", "worker-b"):
        assert await store.claim_task(task.task_id, worker_id, stale_after_seconds=FRESH) is None
        # However old the claim, a finished task stays finished.
        assert await store.claim_task(task.task_id, worker_id, stale_after_seconds=1e-6) is None
    assert await _get(store, task.task_id) == finished


async def test_claim_task_of_an_unknown_task_is_none(store: PersistenceProvider) -> None:
    task = await _task(store)
    unknown = str(uuid.uuid4())
    assert await store.claim_task(unknown, "worker-a", stale_after_seconds=FRESH) is None
    assert await store.get_task_record(unknown) is None
    assert await _get(store, task.task_id) == task


@pytest.mark.parametrize("seconds", [0, -1, 0.0, -0.5, math.nan, math.inf])
async def test_claim_task_needs_a_positive_staleness(
    store: PersistenceProvider, seconds: float
) -> None:
    task = await _task(store)
    with pytest.raises(ValueError, match="stale_after_seconds"):
        await store.claim_task(task.task_id, "worker-a", stale_after_seconds=seconds)
    assert await _get(store, task.task_id) == task


async def _race(stores: list[PersistenceProvider], task_id: str) -> list[TaskRecord]:
    """Ten workers claim ``task_id`` at once, spread over ``stores``; the claims that won."""
    claims = await asyncio.gather(
        *(
            stores[n % len(stores)].claim_task(task_id, f"worker-{n}", stale_after_seconds=FRESH)
            for n in range(10)
        )
    )
    return [claim for claim in claims if claim is not None]


async def test_concurrent_claim_task_calls_have_one_winner(store: PersistenceProvider) -> None:
    task = await _task(store)
    winners = await _race([store], task.task_id)
    assert len(winners) == 1
    assert await _get(store, task.task_id) == winners[0]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], PersistenceProvider]:
    """Makes providers (each its own connections) on one database: a file or a schema."""
    if request.param == "sqlite":
        return lambda: SQLitePersistenceProvider(tmp_path / "shared.db")
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return lambda: PostgresPersistenceProvider(url, schema=schema, pool_min_size=1, pool_max_size=4)


async def test_claim_task_from_separate_providers_has_one_winner(
    shared_database: Callable[[], PersistenceProvider],
) -> None:
    providers = [shared_database() for _ in range(2)]
    for provider in providers:
        await provider.initialize()
    try:
        task = await _task(providers[0])
        winners = await _race(providers, task.task_id)
        assert len(winners) == 1
        for provider in providers:
            assert await _get(provider, task.task_id) == winners[0]
        # The loser's view of a fresh claim: refused from either provider.
        for n, provider in enumerate(providers):
            late = await provider.claim_task(task.task_id, f"late-{n}", stale_after_seconds=FRESH)
            assert late is None
    finally:
        for provider in providers:
            await provider.close()
