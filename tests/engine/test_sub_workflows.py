"""Sub-workflows: a child created by the same builder runs inside its parent's call; its wait
bubbles up through every ancestor (WAITING_CHILD_HUMAN_INPUT) and resuming it completes the
chain; its failure fails the parent (FAILED_CHILD_WORKFLOW), and a retry starts a new child; a
crash between the child's commit and the parent's is settled later; fire-and-forget spawns
independent runs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import WorkflowStateError
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.support import async_steps, child_steps
from tests.support.config import STEPS, ConfigDir, audit_types, workflow


@pytest.fixture
def chain(config: ConfigDir) -> ConfigDir:
    config.write(
        "Grandchild",
        workflow(
            "Grandchild",
            f"""
            - name: Check
              function: {STEPS}.mark
              automate_next: true
            - name: Approve
              type: HUMAN_IN_LOOP
              function: {STEPS}.approve
              input_model: {STEPS}.ApprovalInput
              automate_next: true
            - name: Close
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Child",
        workflow(
            "Child",
            f"""
            - name: Reserve
              function: {STEPS}.mark
              automate_next: true
            - name: Review
              type: SUB_WORKFLOW
              target_workflow_type: Grandchild
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-review"
                amount: "{{{{ state.amount }}}}"
              automate_next: true
            - name: Book
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Parent",
        workflow(
            "Parent",
            f"""
            - name: Prepare
              function: {STEPS}.mark
              automate_next: true
            - name: Delegate
              type: SUB_WORKFLOW
              target_workflow_type: Child
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-child"
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Fragile",
        workflow(
            "Fragile",
            """
            - name: Attempt
              function: tests.support.child_steps.book
            """,
        ),
    )
    config.write(
        "Guardian",
        workflow(
            "Guardian",
            f"""
            - name: Delegate
              type: SUB_WORKFLOW
              target_workflow_type: Fragile
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-fragile"
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Spawner",
        workflow(
            "Spawner",
            f"""
            - name: Kick
              type: FIRE_AND_FORGET
              target_workflow_type: Grandchild
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-spawned"
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Director",
        workflow(
            "Director",
            f"""
            - name: Delegate
              function: tests.support.child_steps.delegate
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "AsyncChild",
        workflow(
            "AsyncChild",
            f"""
            - name: Score
              type: ASYNC
              function: tests.support.async_steps.gated_score
              automate_next: true
            - name: Done
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "AsyncParent",
        workflow(
            "AsyncParent",
            f"""
            - name: Delegate
              type: SUB_WORKFLOW
              target_workflow_type: AsyncChild
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-async"
                amount: 4
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    return config


class ChildRecorder:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, str]] = []

    def on_child_workflow_started(self, parent_id: str, child_id: str, child_type: str) -> None:
        self.started.append((parent_id, child_id, child_type))


APPROVAL = {"approved": True, "approver": "Ann"}


async def test_a_wait_three_levels_down_bubbles_up_and_resuming_completes_all_three(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = chain.builder(persistence)
    parent = await builder.create_workflow("Parent", {"order_id": "P1", "amount": 3})
    await parent.next_step()

    assert parent.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT
    [child_row] = await builder.list_workflows(parent_workflow_id=parent.id)
    [grand_row] = await builder.list_workflows(parent_workflow_id=child_row.id)
    assert parent.blocked_on_child_id == child_row.id
    assert parent.metadata["waiting_child_id"] == grand_row.id  # the run a person answers
    assert parent.metadata["waiting_child_step"] == "Approve"
    child = await builder.load_workflow(child_row.id)
    assert child.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT
    grandchild = await builder.load_workflow(grand_row.id)
    assert grandchild.status is WorkflowStatus.WAITING_HUMAN
    assert grandchild.state.order_id == "P1-child-review"
    assert grandchild.state.amount == 0  # the child's amount: not passed on from the parent
    with pytest.raises(WorkflowStateError, match="waits for its child workflow"):
        await parent.next_step()

    await grandchild.next_step(APPROVAL)  # answered in the grandchild: the chain completes

    assert grandchild.status is WorkflowStatus.COMPLETED
    done_child = await builder.load_workflow(child.id)
    done_parent = await builder.load_workflow(parent.id)
    assert done_child.status is WorkflowStatus.COMPLETED
    assert done_child.state.visited == ["Reserve", "Book"]
    assert done_parent.status is WorkflowStatus.COMPLETED
    assert done_parent.state.visited == ["Prepare", "Finish"]
    results = done_parent.metadata["sub_workflow_results"][child.id]
    assert results["workflow_type"] == "Child"
    assert results["status"] == "COMPLETED"
    assert results["state"]["visited"] == ["Reserve", "Book"]
    assert results["final_result"] == {"visited": ["Reserve", "Book"]}
    assert done_parent.blocked_on_child_id is None
    types = await audit_types(persistence, parent.id)
    assert "SUB_WORKFLOW_STARTED" in types and "SUB_WORKFLOW_COMPLETED" in types


async def test_a_child_failure_fails_the_parent_and_a_retry_starts_a_new_child(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = chain.builder(persistence)
    order = f"P2-{uuid.uuid4().hex[:8]}"
    parent = await builder.create_workflow("Guardian", {"order_id": order})
    await parent.next_step()

    assert parent.status is WorkflowStatus.FAILED_CHILD_WORKFLOW
    first_child = parent.metadata["failed_child_id"]
    assert parent.metadata["failed_child_status"] == "FAILED"
    stored = await persistence.load_workflow(parent.id)
    assert stored is not None
    assert stored.status == "FAILED_CHILD_WORKFLOW"
    assert stored.blocked_on_child_id == first_child

    await parent.retry()
    children_before = await builder.list_workflows(parent_workflow_id=parent.id)
    assert [c.id for c in children_before] == [first_child]

    child_steps.ALLOWED.add(f"{order}-fragile")
    await parent.next_step()  # the step runs again: a second child (attempt 2)

    assert parent.status is WorkflowStatus.COMPLETED
    children = await builder.list_workflows(parent_workflow_id=parent.id)
    assert len(children) == 2
    assert {c.status for c in children} == {"FAILED", "COMPLETED"}


async def test_a_parent_that_missed_its_childs_completion_is_settled_later(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = chain.builder(persistence)
    parent = await builder.create_workflow("Parent", {"order_id": "P3"})
    await parent.next_step()
    [grand_row] = [
        row
        for row in await builder.list_workflows(workflow_type="Grandchild")
        if row.state["order_id"] == "P3-child-review"
    ]
    # The grandchild completes in a process that stops before telling anyone.
    orphaned = await chain.builder(persistence).load_workflow(grand_row.id)
    orphaned._parent_drives = True  # as if the notification never happened
    await orphaned.next_step(APPROVAL)
    assert orphaned.status is WorkflowStatus.COMPLETED
    assert (await builder.load_workflow(parent.id)).status is (
        WorkflowStatus.WAITING_CHILD_HUMAN_INPUT
    )

    assert await builder.settle_child(grand_row.id) is True
    assert await builder.settle_child(grand_row.id) is True  # again: changes nothing

    final = await builder.load_workflow(parent.id)
    assert final.status is WorkflowStatus.COMPLETED
    assert final.state.visited == ["Prepare", "Finish"]


async def test_fire_and_forget_spawns_an_independent_run(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = chain.builder(persistence)
    parent = await builder.create_workflow("Spawner", {"order_id": "P4"})
    await parent.next_step()

    assert parent.status is WorkflowStatus.COMPLETED  # it did not wait for the spawned run
    spawned_id = parent.metadata.get("spawn_counts") and _spawned_id(
        await persistence.get_audit_log(parent.id, limit=100)
    )
    assert spawned_id
    spawned = await builder.load_workflow(spawned_id)
    assert spawned.status is WorkflowStatus.WAITING_HUMAN  # ran up to its first wait
    assert spawned.parent_execution_id is None
    assert spawned.metadata["spawned_by"] == parent.id
    await spawned.next_step(APPROVAL)
    assert (await builder.load_workflow(parent.id)).version == parent.version  # untouched


def _spawned_id(audit: list[Any]) -> str | None:
    for event in audit:
        if event.event_type == "STEP_EXECUTED" and event.step_name == "Kick":
            return str(event.data["result"]["spawned_workflow_id"])
    return None


async def test_a_step_function_starts_a_child_with_the_directive(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    recorder = ChildRecorder()
    builder = chain.builder(persistence, workflow_observer=recorder)
    parent = await builder.create_workflow(
        "Director", {"order_id": "P5"}, owner_id="ann", org_id="acme", data_region="eu"
    )
    await parent.next_step()

    assert parent.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT
    [child] = await builder.list_workflows(parent_workflow_id=parent.id)
    assert child.state["order_id"] == "P5-directed"
    assert (child.owner_id, child.org_id, child.data_region) == ("ann", "acme", "eu")
    assert recorder.started == [(parent.id, child.id, "Grandchild")]

    waiting = await builder.load_workflow(child.id)
    await waiting.next_step(APPROVAL)
    assert (await builder.load_workflow(parent.id)).status is WorkflowStatus.COMPLETED


async def test_a_child_finishing_in_the_background_resumes_its_parent(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    pool = ThreadPoolExecutionProvider(max_workers=2)
    await pool.initialize()
    builder = chain.builder(persistence, execution_provider=pool)
    try:
        parent = await builder.create_workflow("AsyncParent", {"order_id": "P6"})
        await parent.next_step()
        assert parent.status is WorkflowStatus.PENDING_SUB_WORKFLOW  # the child's step is out
        [child] = await builder.list_workflows(parent_workflow_id=parent.id)
        assert child.status == "PENDING_ASYNC"
        async_steps.GATES[child.id].set()
    finally:
        await pool.close()  # joins the background step; its report resumed the chain

    final = await builder.load_workflow(parent.id)
    assert final.status is WorkflowStatus.COMPLETED
    assert final.state.visited == ["Finish"]
    result = final.metadata["sub_workflow_results"][child.id]
    assert result["state"]["score"] == 8


async def test_a_crash_between_creating_the_child_and_parking_the_parent_starts_no_second_child(
    chain: ConfigDir, persistence: PersistenceProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = chain.builder(persistence)
    parent = await builder.create_workflow("Director", {"order_id": "P7"})
    commit = persistence.commit_workflow

    async def lost_parking(work: Any) -> int:
        if work.update.status == "PENDING_SUB_WORKFLOW":
            raise ConnectionError("the process died here")
        return await commit(work)

    monkeypatch.setattr(persistence, "commit_workflow", lost_parking)
    with pytest.raises(ConnectionError):
        await parent.next_step()
    monkeypatch.setattr(persistence, "commit_workflow", commit)
    [orphan] = await builder.list_workflows(parent_workflow_id=parent.id)
    stored = await persistence.load_workflow(parent.id)
    assert stored is not None
    assert stored.status == "ACTIVE"  # the parent was never parked

    again = await chain.builder(persistence).load_workflow(parent.id)  # another process
    await again.next_step()  # the step runs again and finds the child it created

    assert [c.id for c in await builder.list_workflows(parent_workflow_id=parent.id)] == [orphan.id]
    assert again.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT
    assert again.blocked_on_child_id == orphan.id


async def test_a_child_that_cannot_be_created_fails_the_step(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    chain.write(
        "Orphanage",
        workflow(
            "Orphanage",
            """
            - name: Delegate
              type: SUB_WORKFLOW
              target_workflow_type: NoSuchType
            """,
        ),
    )
    builder = chain.builder(persistence)
    parent = await builder.create_workflow("Orphanage", {"order_id": "P8"})
    with pytest.raises(Exception, match="NoSuchType"):
        await parent.next_step()
    stored = await persistence.load_workflow(parent.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert "NoSuchType" in (stored.error_message or "")
    assert (await audit_types(persistence, parent.id))[-2:] == ["STEP_FAILED", "WORKFLOW_FAILED"]


async def test_a_spawned_run_that_fails_leaves_its_spawner_alone(
    chain: ConfigDir, persistence: PersistenceProvider
) -> None:
    chain.write(
        "CarelessSpawner",
        workflow(
            "CarelessSpawner",
            f"""
            - name: Kick
              type: FIRE_AND_FORGET
              target_workflow_type: Fragile
              initial_data_template:
                order_id: "{{{{ state.order_id }}}}-doomed"
              automate_next: true
            - name: Finish
              function: {STEPS}.mark
            """,
        ),
    )
    builder = chain.builder(persistence)
    parent = await builder.create_workflow(
        "CarelessSpawner", {"order_id": f"P9-{uuid.uuid4().hex}"}
    )
    await parent.next_step()

    assert parent.status is WorkflowStatus.COMPLETED
    assert parent.state.visited == ["Finish"]
    [spawned] = await builder.list_workflows(workflow_type="Fragile", status="FAILED", limit=1000)
    assert spawned.metadata["spawned_by"] == parent.id
    assert spawned.parent_execution_id is None
