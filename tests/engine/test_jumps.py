"""Jumps: WorkflowJumpDirective forward (skipped steps recorded) and backward (a loop), the
``jump_to_step`` API, and unknown targets."""

from __future__ import annotations

import pytest

from ruvon import JumpTargetError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import audit_log, audit_types


async def test_a_forward_jump_records_the_skipped_steps(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("JumpForward", {"order_id": "J1"})

    result, next_name = await workflow.next_step()

    assert result == {"note": "jumped", "visited": ["Start"]}
    assert next_name == "Finish"
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.current_step == "Finish"
    assert loaded.metadata["skipped_steps"] == ["Middle", "Other"]
    assert loaded.state.note == "jumped"
    executed = (await audit_log(persistence, workflow.id))[-1]
    assert executed.event_type == "STEP_EXECUTED"
    assert executed.data is not None
    assert executed.data["jumped_to"] == "Finish"

    assert await workflow.run() is WorkflowStatus.COMPLETED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.state.visited == ["Start", "Finish"]
    assert loaded.metadata["skipped_steps"] == ["Middle", "Other"]


async def test_a_backward_jump_runs_a_step_again(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Loop", {"order_id": "J1"})

    names = []
    while workflow.status is WorkflowStatus.ACTIVE:
        _, next_name = await workflow.next_step()
        names.append(next_name)

    # Check jumps back to Work once (counter 1), then lets the workflow go on (counter 2).
    assert names == ["Work", "Check", "Work", "Check", "Finish", None]
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.counter == 2
    assert loaded.state.visited == ["Start", "Work", "Check", "Work", "Check", "Finish"]
    assert "skipped_steps" not in loaded.metadata
    executed = [
        e.step_name
        for e in await audit_log(persistence, workflow.id)
        if e.event_type == "STEP_EXECUTED"
    ]
    assert executed == ["Start", "Work", "Check", "Work", "Check", "Finish"]


@pytest.mark.parametrize(("target", "skipped"), [("Three", ["Two"]), ("One", [])])
async def test_jump_to_step_moves_the_pointer(
    builder: WorkflowBuilder,
    fresh: WorkflowBuilder,
    persistence: PersistenceProvider,
    target: str,
    skipped: list[str],
) -> None:
    workflow = await builder.create_workflow("Simple", {"order_id": "J1"})
    await workflow.next_step()

    await workflow.jump_to_step(target)

    assert workflow.current_step == target
    assert workflow.status is WorkflowStatus.ACTIVE
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.current_step == target
    jumped = (await audit_log(persistence, workflow.id))[-1]
    assert jumped.event_type == "WORKFLOW_JUMPED"
    assert jumped.data == {"from_step": "Two", "to_step": target}

    await workflow.run()
    visited = (await fresh.load_workflow(workflow.id)).state.visited
    expected = {"Three": ["One", "Three"], "One": ["One", "One", "Two", "Three"]}
    assert visited == expected[target]


async def test_jump_to_step_resumes_a_waiting_workflow_elsewhere(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "J1"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.WAITING_HUMAN

    await workflow.jump_to_step("Ship")

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.ACTIVE
    assert loaded.current_step == "Ship"
    # It no longer waits for anything.
    assert "waiting_for" not in loaded.metadata
    await loaded.next_step()
    assert (await fresh.load_workflow(workflow.id)).status is WorkflowStatus.COMPLETED


async def test_jump_to_an_unknown_step_is_refused(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Simple", {"order_id": "J1"})
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(JumpTargetError, match="'Nowhere'"):
        await workflow.jump_to_step("Nowhere")

    assert await persistence.load_workflow(workflow.id) == before
    assert workflow.status is WorkflowStatus.ACTIVE


async def test_a_directive_naming_an_unknown_step_fails_the_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("JumpNowhere", {"order_id": "J1"})

    with pytest.raises(JumpTargetError) as caught:
        await workflow.next_step()

    assert isinstance(caught.value, ValueError)
    assert caught.value.target == "Nowhere"
    assert str(caught.value) == "Jump target step 'Nowhere' not found."
    assert caught.value.step_name == "Start"  # type: ignore[attr-defined]
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Start"
    assert loaded.error_message == "JumpTargetError: Jump target step 'Nowhere' not found."
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        "STEP_FAILED",
        "WORKFLOW_FAILED",
    ]
