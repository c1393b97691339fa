"""Declared dependencies (DAG mode): ready steps run as one stage at the same time through the
execution provider, merged in file order and committed together; a route leaves its other
branches SKIPPED; a reload continues the graph."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ruvon import WorkflowStatus
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.progress import StepStatus
from ruvon.providers.persistence import PersistenceProvider
from tests.support import dag_steps
from tests.support.config import STEPS, ConfigDir, audit_types, workflow

D = "tests.support.dag_steps"


@pytest.fixture
def graphs(config: ConfigDir) -> ConfigDir:
    for name, branch in (("Meet", "meet"), ("Fork", "left"), ("ForkRecord", "record")):
        other = "right" if branch == "left" else branch
        config.write(
            name,
            workflow(
                name,
                f"""
                - name: Start
                  function: {D}.record
                - name: Left
                  function: {D}.{branch}
                  dependencies: [Start]
                - name: Right
                  function: {D}.{other}
                  dependencies: [Start]
                - name: Join
                  function: {D}.record
                  dependencies: [Left, Right]
                """,
            ),
        )
    config.write(
        "Branches",
        workflow(
            "Branches",
            f"""
            - name: Start
              function: {D}.record
              automate_next: true
            - name: Decide
              type: DECISION
              dependencies: [Start]
              routes:
                - condition: "state.amount > 10"
                  target: Big
                - default: Small
              automate_next: true
            - name: Big
              function: {D}.record
              dependencies: [Decide]
              automate_next: true
            - name: Small
              function: {D}.record
              dependencies: [Decide]
              automate_next: true
            - name: Report
              function: {D}.record
              dependencies: [Big, Small]
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
        await provider.close()


async def test_ready_branches_run_at_the_same_time(
    graphs: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    builder = graphs.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("Meet", {"order_id": "D1"})
    await wf.next_step()  # Start
    assert wf.ready_steps == ["Left", "Right"]

    # Each branch waits at a barrier for the other: only a concurrent stage gets past it.
    result, _ = await wf.next_step()

    assert result == {"left": True, "note": "Right met", "right": True}  # merged in file order
    assert wf.ready_steps == ["Join"]
    assert wf.state.note == "Right met"
    types = await audit_types(persistence, wf.id)
    assert types.count("STEP_EXECUTED") == 3
    await wf.next_step()
    assert wf.status is WorkflowStatus.COMPLETED


async def test_the_sync_provider_runs_a_stage_in_file_order(
    graphs: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await graphs.builder(persistence).create_workflow("Fork", {"order_id": "D2"})
    await wf.next_step()
    await wf.next_step()

    assert dag_steps.ORDER[wf.id] == ["Start", "Left", "Right"]
    assert (wf.state.approved, wf.state.reviewer, wf.state.note) == (True, "right", "right")


async def test_a_reload_between_stages_continues_the_graph(
    graphs: ConfigDir, persistence: PersistenceProvider
) -> None:
    first = await graphs.builder(persistence).create_workflow("ForkRecord", {"order_id": "D3"})
    await first.next_step()  # Start only

    again = await graphs.builder(persistence).load_workflow(first.id)
    assert again.ready_steps == ["Left", "Right"]
    await again.next_step()
    third = await graphs.builder(persistence).load_workflow(first.id)
    assert third.ready_steps == ["Join"]
    assert third.progress.status_of("Left") is StepStatus.COMPLETED
    await third.next_step()

    assert third.status is WorkflowStatus.COMPLETED
    assert dag_steps.ORDER[first.id] == ["Start", "Left", "Right", "Join"]
    # Each branch saw the state as the stage began; the later one in the file wins the merge.
    assert third.state.visited == ["Start", "Right", "Join"]


@pytest.mark.parametrize(
    ("amount", "taken", "skipped"), [(50, "Big", "Small"), (5, "Small", "Big")]
)
async def test_a_route_skips_the_other_branch_and_its_dependants_go_on(
    graphs: ConfigDir,
    persistence: PersistenceProvider,
    amount: int,
    taken: str,
    skipped: str,
) -> None:
    wf = await graphs.builder(persistence).create_workflow(
        "Branches", {"order_id": "D4", "amount": amount}
    )
    await wf.run()

    assert wf.status is WorkflowStatus.COMPLETED
    assert dag_steps.ORDER[wf.id] == ["Start", taken, "Report"]
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.progress["steps"][skipped] == "skipped"
    assert stored.progress["steps"]["Report"] == "completed"


async def test_a_step_with_a_retry_policy_runs_on_its_own_with_it(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    """Retries, timeouts and compensations are applied by the engine to a step run on its own:
    such a step does not join a concurrent stage."""
    config.write(
        "RetryInGraph",
        workflow(
            "RetryInGraph",
            f"""
            - name: Start
              function: {D}.record
            - name: Flaky
              function: {STEPS}.flaky_until_third
              dependencies: [Start]
              retry_policy:
                max_attempts: 3
                delay: 0
            - name: Other
              function: {D}.record
              dependencies: [Start]
            """,
        ),
    )
    wf = await config.builder(persistence).create_workflow("RetryInGraph", {"order_id": "D5"})
    await wf.next_step()
    assert wf.ready_steps == ["Flaky", "Other"]

    await wf.next_step()  # Flaky alone, retried until its third attempt succeeds
    assert wf.ready_steps == ["Other"]
    assert wf.state.attempts == [1, 2, 3]
    await wf.next_step()
    assert wf.status is WorkflowStatus.COMPLETED
