"""The progress record: stored with every commit, restored by a reload — per-step statuses
and the last result (``context.previous_step_result`` survives a reload)."""

from __future__ import annotations

import pytest

from ruvon import WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.progress import Progress, StepStatus
from ruvon.providers.persistence import PersistenceProvider, WorkflowCommit, WorkflowUpdate
from tests.support.config import STEPS, ConfigDir, workflow


@pytest.fixture
def two_calls(config: ConfigDir) -> ConfigDir:
    config.write(
        "TwoCalls",
        workflow(
            "TwoCalls",
            f"""
            - name: A
              function: {STEPS}.mark
            - name: B
              function: {STEPS}.remember_previous
            """,
        ),
    )
    return config


async def test_previous_step_result_survives_a_reload(
    two_calls: ConfigDir, persistence: PersistenceProvider
) -> None:
    created = await two_calls.builder(persistence).create_workflow("TwoCalls", {"order_id": "P1"})
    result, _ = await created.next_step()  # A, in this process

    # Another process loads the run and runs B: it sees A's result.
    loaded = await two_calls.builder(persistence).load_workflow(created.id)
    await loaded.next_step()

    assert result == {"visited": ["A"]}
    assert loaded.state.previous == {"visited": ["A"]}
    assert loaded.status is WorkflowStatus.COMPLETED


async def test_step_statuses_are_stored_and_restored(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    jumping = await builder.create_workflow("JumpForward", {"order_id": "P2"})
    await jumping.next_step()  # Start jumps to Finish over Middle and Other

    stored = await persistence.load_workflow(jumping.id)
    assert stored is not None
    assert stored.progress["cursor"] == "Finish"
    assert stored.progress["steps"] == {
        "Middle": "skipped",
        "Other": "skipped",
        "Start": "completed",
    }
    assert stored.progress["last_result"]["note"] == "jumped"
    reloaded = await fresh.load_workflow(jumping.id)
    assert reloaded.progress.status_of("Middle") is StepStatus.SKIPPED
    assert reloaded.progress.status_of("Finish") is StepStatus.PENDING
    assert reloaded.progress.cursor == "Finish"


async def test_a_failed_step_is_recorded_and_a_retry_makes_it_pending(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    fragile = await builder.create_workflow("Fragile", {"order_id": "P3"})
    await fragile.next_step()
    with pytest.raises(RuntimeError):
        await fragile.next_step()

    failed = await fresh.load_workflow(fragile.id)
    assert failed.progress.status_of("Start") is StepStatus.COMPLETED
    assert failed.progress.status_of("Explode") is StepStatus.FAILED
    assert failed.progress.cursor == "Explode"

    await failed.retry()
    stored = await persistence.load_workflow(fragile.id)
    assert stored is not None
    assert stored.progress["steps"] == {"Start": "completed"}
    assert stored.progress["cursor"] == "Explode"


async def test_a_row_without_a_progress_record_loads(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    """Rows written before the record existed hold ``{}``: the cursor comes from the row."""
    created = await builder.create_workflow("Fragile", {"order_id": "P4"})
    await created.next_step()
    stored = await persistence.load_workflow(created.id)
    assert stored is not None
    await persistence.commit_workflow(
        WorkflowCommit(
            WorkflowUpdate(
                workflow_id=stored.id,
                status=stored.status,
                state=stored.state,
                current_step=stored.current_step,
                current_step_index=stored.current_step_index,
                metadata=stored.metadata,
                progress={},
            ),
            stored.version,
        )
    )

    old = await fresh.load_workflow(created.id)
    assert old.progress.cursor == "Explode"
    assert old.progress.steps == {}
    assert old.current_step == "Explode"


def test_moving_to_a_step_forgets_its_part_way_cursor() -> None:
    """A loop or batch step jumped to (or retried from an earlier step) starts over; staying on
    it (the next part, a reload, a retry of that step) keeps where it was."""
    part_way = Progress(cursor="Each").step_progressed("Each", {"next": 2})
    assert part_way.at("Each").loops == {"Each": {"next": 2}}

    elsewhere = part_way.at("Start")
    assert elsewhere.loops == {"Each": {"next": 2}}  # kept until the run is at Each again
    back = elsewhere.at("Each")
    assert back.loops == {}
    assert back.status_of("Each") is StepStatus.PENDING
