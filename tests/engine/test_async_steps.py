"""ASYNC steps: committed PENDING_ASYNC with a dispatch token before the task is sent, completed
once through complete_async_step (a stale or repeated report changes nothing), inline on the
sync provider, in the background on the thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ruvon import WorkflowStatus
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.support import async_steps
from tests.support.config import STEPS, ConfigDir, audit_types, workflow

A = "tests.support.async_steps"


@pytest.fixture
def async_config(config: ConfigDir) -> ConfigDir:
    for name, function in (
        ("Scoring", "score"),
        ("SlowScoring", "gated_score"),
        ("Down", "bureau_down"),
    ):
        config.write(
            name,
            workflow(
                name,
                f"""
                - name: Prepare
                  function: {STEPS}.mark
                  automate_next: true
                - name: Score
                  type: ASYNC
                  function: {A}.{function}
                  automate_next: true
                - name: Finish
                  function: {STEPS}.mark
                """,
            ),
        )
    return config


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutionProvider]:
    provider = ThreadPoolExecutionProvider(max_workers=2)
    await provider.initialize()
    try:
        yield provider
    finally:
        await provider.close()


async def until(predicate: object, what: str) -> None:
    """Wait (bounded) for a condition the background work makes true."""
    for _ in range(2000):
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_sync_provider_completes_an_async_step_in_the_call(
    async_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await async_config.builder(persistence).create_workflow(
        "Scoring", {"order_id": "A1", "amount": 21}
    )
    result, _ = await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.score == 42
    assert wf.state.visited == ["Prepare", "Score", "Finish"]
    assert result == {"visited": ["Prepare", "Score", "Finish"]}
    types = await audit_types(persistence, wf.id)
    assert types[:4] == ["WORKFLOW_STARTED", "STEP_EXECUTED", "STEP_DISPATCHED", "STEP_EXECUTED"]
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.progress["steps"]["Score"] == "completed"
    assert "dispatch" not in stored.progress


async def test_the_thread_pool_runs_it_in_the_background(
    async_config: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    builder = async_config.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("SlowScoring", {"order_id": "A2", "amount": 5})

    await wf.next_step()  # Prepare, then Score is dispatched: control comes back at once

    assert wf.status is WorkflowStatus.PENDING_ASYNC
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.status == "PENDING_ASYNC"  # committed before the function could finish
    token = stored.progress["dispatch"]["Score"]
    assert stored.progress["steps"]["Score"] == "dispatched"
    with pytest.raises(ValueError, match="PENDING_ASYNC"):
        await wf.next_step()

    async_steps.GATES[wf.id].set()

    async def done() -> bool:
        record = await persistence.load_workflow(wf.id)
        return record is not None and record.status == "COMPLETED"

    await until(done, "the background step to complete the workflow")
    final = await builder.load_workflow(wf.id)
    assert final.state.score == 10
    assert final.state.visited == ["Prepare", "Score", "Finish"]  # automate_next went on
    version = final.version

    # The same report again, and a report with a wrong token: nothing changes.
    assert await builder.complete_async_step(wf.id, 1, token, result={"score": 999}) is False
    assert await builder.complete_async_step(wf.id, 1, "forged", result={"score": 999}) is False
    again = await persistence.load_workflow(wf.id)
    assert again is not None
    assert (again.version, again.state["score"]) == (version, 10)
    assert async_steps.CALLS[wf.id] == 1


async def test_a_report_from_another_process_completes_the_step(
    async_config: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    """A worker elsewhere reports through the builder: load, check the token, apply once."""
    builder = async_config.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("SlowScoring", {"order_id": "A3", "amount": 1})
    await wf.next_step()
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    token = stored.progress["dispatch"]["Score"]

    worker = async_config.builder(persistence)  # another process's builder
    assert await worker.complete_async_step(wf.id, 1, token, result={"score": 7}) is True
    assert await worker.complete_async_step(wf.id, 1, token, result={"score": 8}) is False

    done = await worker.load_workflow(wf.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state.score == 7
    # The background run finishes later: its report is stale now and changes nothing.
    async_steps.GATES[wf.id].set()
    await pool.close()
    final = await persistence.load_workflow(wf.id)
    assert final is not None
    assert (final.version, final.state["score"]) == (done.version, 7)


async def test_a_failing_async_step_fails_the_workflow_and_can_be_retried(
    async_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = async_config.builder(persistence)
    wf = await builder.create_workflow("Down", {"order_id": "A4"})

    with pytest.raises(ConnectionError, match="credit bureau unreachable"):
        await wf.next_step()

    assert wf.status is WorkflowStatus.FAILED
    assert wf.current_step_name == "Score"
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert "dispatch" not in stored.progress
    await wf.retry()
    assert wf.status is WorkflowStatus.ACTIVE
