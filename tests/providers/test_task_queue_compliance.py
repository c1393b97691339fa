"""The task queue part of the persistence contract, checked on every provider.

Each test takes ``store`` and runs on memory, SQLite and PostgreSQL. The one rule that matters
most: two concurrent claimers never get the same task (on PostgreSQL also across pools).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from ruvon.errors import PersistenceError, TaskNotFoundError, WorkflowNotFoundError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
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
