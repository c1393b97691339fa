"""PARALLEL steps in batches: each batch's merge is committed (audit STEP_PROGRESSED, the cursor
in the progress record) before the next batch starts; a failure in a later batch keeps the
earlier batches, and a retry — in another process too — resumes at the batch in progress."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import ParallelExecutionError
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.support import parallel_steps
from tests.support.config import ConfigDir, audit_log
from tests.support.parallel_steps import P, tasks, write

ITEMS = [1, 2, 3, 4, 5]


@pytest.fixture
def batches(config: ConfigDir) -> ConfigDir:
    keys: dict[str, Any] = {
        "iterate_over": "state.items",
        "task_function": f"{P}.times_ten",
        "batch_size": 2,
        "merge_strategy": "DEEP",
    }
    write(config, "Batches", **keys)
    write(config, "LenientBatches", **keys, allow_partial_success=True)
    return config


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutionProvider]:
    provider = ThreadPoolExecutionProvider(max_workers=4)
    await provider.initialize()
    try:
        yield provider
    finally:
        await provider.close()


async def progressed(persistence: PersistenceProvider, workflow_id: str) -> list[Any]:
    """The cursors of the step's STEP_PROGRESSED entries, oldest first."""
    return [
        (event.data or {}).get("cursor")
        for event in await audit_log(persistence, workflow_id)
        if event.event_type == "STEP_PROGRESSED"
    ]


async def test_batches_run_one_after_another_and_the_last_completes_the_step(
    batches: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await batches.builder(persistence).create_workflow("Batches", {"items": ITEMS})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.totals == {"1": 10, "2": 20, "3": 30, "4": 40, "5": 50}
    assert parallel_steps.CALLS[wf.id] == ITEMS
    assert [name for name, _, _ in parallel_steps.SEEN[wf.id]] == [f"FanOut_{i}" for i in range(5)]
    assert await progressed(persistence, wf.id) == [{"next": 2}, {"next": 4}]
    entries = [e for e in await audit_log(persistence, wf.id) if e.step_name == "FanOut"]
    assert [e.event_type for e in entries] == [
        "STEP_PROGRESSED",
        "STEP_PROGRESSED",
        "STEP_EXECUTED",
    ]
    assert entries[0].data is not None
    assert entries[0].data["result"] == {"totals": {"1": 10, "2": 20}}
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.progress["steps"]["FanOut"] == "completed"
    assert "FanOut" not in stored.progress.get("loops", {})


async def test_a_batch_is_committed_before_the_next_one_starts(
    batches: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    wf = await batches.builder(persistence, execution_provider=pool).create_workflow(
        "Batches", {"items": ITEMS}
    )
    parallel_steps.GATES[wf.id] = threading.Event()
    parallel_steps.GATED_ITEMS[wf.id] = {3}  # the first task of the second batch waits
    running = asyncio.create_task(wf.next_step())
    try:
        stored = None
        for _ in range(2000):  # bounded: until the first batch is in the store
            stored = await persistence.load_workflow(wf.id)
            if stored is not None and stored.progress.get("loops"):
                break
            await asyncio.sleep(0.005)
        assert stored is not None
        assert stored.progress["loops"] == {"FanOut": {"next": 2}}
        assert stored.progress["steps"]["FanOut"] == "running"
        assert stored.state["totals"] == {"1": 10, "2": 20}
        assert stored.status == "ACTIVE"
        assert 5 not in parallel_steps.CALLS[wf.id]  # the third batch has not started
    finally:
        parallel_steps.GATES[wf.id].set()
        await running
    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.totals["5"] == 50


async def test_a_failed_batch_keeps_the_earlier_ones_and_a_retry_resumes_at_it(
    batches: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await batches.builder(persistence).create_workflow("Batches", {"items": ITEMS})
    parallel_steps.FAIL_ITEMS[wf.id] = {3}

    with pytest.raises(ParallelExecutionError, match=r"'FanOut_2'.*item 3 failed"):
        await wf.next_step()

    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert stored.state["totals"] == {"1": 10, "2": 20}  # batch 1 merged, batch 2 not
    assert stored.progress["loops"] == {"FanOut": {"next": 2}}
    assert stored.progress["steps"]["FanOut"] == "failed"
    assert await progressed(persistence, wf.id) == [{"next": 2}]
    assert parallel_steps.CALLS[wf.id] == [1, 2, 3, 4]  # item 4 ran: a failure stops no task

    # The service is back; another process retries the run.
    parallel_steps.FAIL_ITEMS[wf.id].clear()
    again = await batches.builder(persistence).load_workflow(wf.id)
    await again.retry()
    await again.next_step()

    assert again.status is WorkflowStatus.COMPLETED
    assert parallel_steps.CALLS[wf.id][4:] == [3, 4, 5]  # batch 1 did not run again
    assert again.state.totals == {"1": 10, "2": 20, "3": 30, "4": 40, "5": 50}
    assert again.state.finished is True
    assert await progressed(persistence, wf.id) == [{"next": 2}, {"next": 4}]


async def test_partial_failures_of_every_batch_are_kept(
    batches: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await batches.builder(persistence).create_workflow("LenientBatches", {"items": ITEMS})
    parallel_steps.FAIL_ITEMS[wf.id] = {2, 5}
    wf.metadata["note"] = "kept"
    await wf.save()

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.totals == {"1": 10, "3": 30, "4": 40}
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.metadata["note"] == "kept"
    assert stored.metadata["parallel_errors"] == {
        "FanOut": {"FanOut_1": "ValueError: item 2 failed", "FanOut_4": "ValueError: item 5 failed"}
    }
    failed = [
        (e.data or {}).get("task_name")
        for e in await audit_log(persistence, wf.id)
        if e.event_type == "PARALLEL_TASK_FAILED"
    ]
    assert failed == ["FanOut_1", "FanOut_4"]


async def test_declared_tasks_run_in_batches_too(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    names = ["a", "b", "c"]
    write(config, "Declared", tasks=tasks("same_price", *names), batch_size=2)
    wf = await config.builder(persistence).create_workflow("Declared", {})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.info == {"c": 1}  # SHALLOW: the last batch's info replaced the first's
    assert await progressed(persistence, wf.id) == [{"next": 2}]
