"""ASYNC steps inside DAG stages: ready ASYNC steps are dispatched together with the stage's
commit; each reports on its own, by its token, in any order, without rejecting its siblings
(even when the row's version moved in between); the next stage starts after the last report;
a failed sibling voids the others, and a retry dispatches them anew."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ruvon import WorkflowStatus
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.support import dag_steps
from tests.support.config import ConfigDir, audit_types, workflow

D = "tests.support.dag_steps"


@pytest.fixture
def stages(config: ConfigDir) -> ConfigDir:
    for name, left, right in (
        ("Quick", "quick_left", "quick_right"),
        ("Gated", "gated_left", "gated_right"),
    ):
        config.write(
            name,
            workflow(
                name,
                f"""
                - name: Start
                  function: {D}.record
                  automate_next: true
                - name: Left
                  type: ASYNC
                  function: {D}.{left}
                  dependencies: [Start]
                  automate_next: true
                - name: Local
                  function: {D}.record
                  dependencies: [Start]
                  automate_next: true
                - name: Right
                  type: ASYNC
                  function: {D}.{right}
                  dependencies: [Start]
                  automate_next: true
                - name: Join
                  function: {D}.record
                  dependencies: [Left, Local, Right]
                """,
            ),
        )
    return config


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutionProvider]:
    provider = ThreadPoolExecutionProvider(max_workers=4)
    await provider.initialize()
    try:
        yield provider
    finally:
        for key in list(dag_steps.GATES):
            dag_steps.GATES[key].set()  # never leave a thread blocked
        await provider.close()


async def test_the_sync_provider_dispatches_and_completes_the_stage_in_the_call(
    stages: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await stages.builder(persistence).create_workflow("Quick", {"order_id": "S1"})
    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert (wf.state.approved, wf.state.reviewer) == (True, "right")
    assert wf.state.visited == ["Start", "Local", "Join"]
    assert dag_steps.ORDER[wf.id] == ["Start", "Local", "Left", "Right", "Join"]
    types = await audit_types(persistence, wf.id)
    assert types.count("STEP_DISPATCHED") == 2
    assert types.count("STEP_EXECUTED") == 5
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert set(stored.progress["steps"].values()) == {"completed"}
    assert "dispatch" not in stored.progress


async def test_sibling_reports_apply_in_any_order_and_never_reject_each_other(
    stages: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    builder = stages.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("Gated", {"order_id": "S2"})
    await wf.next_step()  # Start, then the stage: Local runs, Left and Right are dispatched

    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.status == "PENDING_ASYNC"
    assert stored.state["visited"] == ["Start", "Local"]
    tokens = dict(stored.progress["dispatch"])
    assert set(tokens) == {"Left", "Right"}
    assert stored.progress["steps"]["Left"] == stored.progress["steps"]["Right"] == "dispatched"

    # Two workers elsewhere report, Right first; each loads the row afresh.
    worker = stages.builder(persistence)
    assert await worker.complete_async_step(wf.id, 3, tokens["Right"], result={"reviewer": "R"})
    half = await persistence.load_workflow(wf.id)
    assert half is not None
    assert half.status == "PENDING_ASYNC"  # still waiting for Left
    assert half.progress["dispatch"] == {"Left": tokens["Left"]}
    assert await worker.complete_async_step(wf.id, 1, tokens["Left"], result={"approved": True})

    done = await worker.load_workflow(wf.id)
    assert done.status is WorkflowStatus.COMPLETED  # Join ran after the last report
    assert (done.state.approved, done.state.reviewer) == (True, "R")
    assert done.state.visited == ["Start", "Local", "Join"]
    # Repeated reports, and the background functions finishing late, change nothing.
    assert not await worker.complete_async_step(wf.id, 1, tokens["Left"], result={})
    assert not await worker.complete_async_step(wf.id, 3, tokens["Right"], result={})
    for step in ("Left", "Right"):
        dag_steps.GATES[(wf.id, step)].set()
    await pool.close()
    final = await persistence.load_workflow(wf.id)
    assert final is not None
    assert (final.version, final.state["reviewer"]) == (done.version, "R")
    assert dag_steps.CALLS[(wf.id, "Left")] == dag_steps.CALLS[(wf.id, "Right")] == 1


async def test_the_background_reports_complete_the_stage(
    stages: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    builder = stages.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("Gated", {"order_id": "S3"})
    await wf.next_step()
    dag_steps.GATES[(wf.id, "Left")].set()
    dag_steps.GATES[(wf.id, "Right")].set()
    await pool.close()  # joins the threads; their reports have been applied

    final = await builder.load_workflow(wf.id)
    assert final.status is WorkflowStatus.COMPLETED
    assert (final.state.approved, final.state.reviewer) == (True, "right")
    assert final.state.visited == ["Start", "Local", "Join"]


async def test_a_failed_sibling_voids_the_other_and_a_retry_dispatches_both_again(
    stages: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    builder = stages.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("Gated", {"order_id": "S4"})
    await wf.next_step()
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    tokens = dict(stored.progress["dispatch"])

    worker = stages.builder(persistence)
    assert await worker.complete_async_step(
        wf.id, 1, tokens["Left"], error=ConnectionError("bureau down")
    )
    failed = await persistence.load_workflow(wf.id)
    assert failed is not None
    assert failed.status == "FAILED"
    assert "dispatch" not in failed.progress
    assert "Right" not in failed.progress["steps"]  # pending again: a retry runs it anew
    assert not await worker.complete_async_step(wf.id, 3, tokens["Right"], result={})

    retried = await stages.builder(persistence, execution_provider=pool).load_workflow(wf.id)
    await retried.retry()
    await retried.next_step()  # the stage again: both siblings are dispatched anew
    again = await persistence.load_workflow(wf.id)
    assert again is not None
    assert again.status == "PENDING_ASYNC"
    assert set(again.progress["dispatch"]) == {"Left", "Right"}
    assert set(again.progress["dispatch"].values()).isdisjoint(tokens.values())
