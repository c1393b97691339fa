"""Failing steps: what is stored and re-raised, retry policies, ``retry(from_step=...)``, and an
invalid merged state that must leave both the stored and the in-memory state untouched."""

from __future__ import annotations

import pytest

from ruvon import StateValidationError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support import order_steps
from tests.support.config import audit_log, audit_types


async def test_a_failing_step_fails_the_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Fragile", {"order_id": "F1"})
    await workflow.next_step()

    # The step's own exception comes back, with the workflow's coordinates on it.
    with pytest.raises(RuntimeError, match=r"^card declined$") as caught:
        await workflow.next_step()

    error = caught.value
    assert error.workflow_id == workflow.id  # type: ignore[attr-defined]
    assert error.step_name == "Explode"  # type: ignore[attr-defined]
    assert error.workflow_status == "FAILED"  # type: ignore[attr-defined]
    assert workflow.status is WorkflowStatus.FAILED
    assert workflow.error_message == "RuntimeError: card declined"
    # No retry policy: called once.
    assert order_steps.CALLS[workflow.id] == [1]

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.error_message == "RuntimeError: card declined"
    assert loaded.current_step == "Explode"
    assert loaded.state.visited == ["Start"]
    assert loaded.completed_at is None

    log = await audit_log(persistence, workflow.id)
    assert [e.event_type for e in log] == [
        "WORKFLOW_STARTED",
        "STEP_EXECUTED",
        "STEP_FAILED",
        "WORKFLOW_FAILED",
    ]
    step_failed, workflow_failed = log[2], log[3]
    assert step_failed.step_name == "Explode"
    assert step_failed.data == {"error": "card declined", "error_type": "RuntimeError"}
    assert workflow_failed.step_name == "Explode"
    assert (workflow_failed.old_status, workflow_failed.new_status) == ("ACTIVE", "FAILED")

    errors = await persistence.get_execution_logs(workflow.id, level="ERROR")
    assert [(e.level, e.step_name, e.message) for e in errors] == [
        ("ERROR", "Explode", "Step failed: RuntimeError: card declined")
    ]
    explode = await persistence.get_execution_logs(workflow.id, step_name="Explode")
    assert [e.message for e in explode] == ["Starting step: Explode (failed)", errors[0].message]


async def test_a_step_retried_by_its_policy_completes(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Flaky", {"order_id": "F2"})

    result, next_name = await workflow.next_step()

    # The function saw attempts 1, 2 and 3 through ``context.attempt``.
    assert result == {"attempts": [1, 2, 3], "visited": ["Call"]}
    assert next_name is None
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.attempts == [1, 2, 3]
    assert loaded.error_message is None
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        "STEP_RETRY_SCHEDULED",  # each failed attempt is committed before the next one
        "STEP_RETRY_SCHEDULED",
        "STEP_EXECUTED",
        "WORKFLOW_COMPLETED",
    ]


async def test_a_step_that_always_fails_stops_after_max_attempts(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Hopeless", {"order_id": "F3"})

    with pytest.raises(RuntimeError, match="card declined"):
        await workflow.next_step()

    assert order_steps.CALLS[workflow.id] == [1, 2, 3]
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    # One failure is recorded, not one per attempt.
    assert (await audit_types(persistence, workflow.id)).count("STEP_FAILED") == 1


async def test_retry_from_a_step_after_fixing_the_cause(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Recoverable", {"order_id": "F4"})
    await workflow.next_step()
    with pytest.raises(LookupError):
        await workflow.next_step()
    assert workflow.status is WorkflowStatus.FAILED

    order_steps.FIXED.add(workflow.id)
    failed = await fresh.load_workflow(workflow.id)
    await failed.retry(from_step="Start")

    assert failed.status is WorkflowStatus.ACTIVE
    assert failed.current_step == "Start"
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.ACTIVE
    assert loaded.error_message is None
    retried = (await audit_log(persistence, workflow.id))[-1]
    assert retried.event_type == "WORKFLOW_RETRIED"
    assert (retried.old_status, retried.new_status) == ("FAILED", "ACTIVE")
    assert retried.data == {"from_step": "Start"}

    assert await failed.run() is WorkflowStatus.COMPLETED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["Start", "Start", "Inventory", "Finish"]


async def test_retry_without_from_step_reruns_the_failed_step(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Recoverable", {"order_id": "F5"})
    await workflow.next_step()
    with pytest.raises(LookupError):
        await workflow.next_step()
    order_steps.FIXED.add(workflow.id)

    await workflow.retry()
    assert workflow.current_step == "Inventory"
    await workflow.run()

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["Start", "Inventory", "Finish"]


async def test_retry_from_an_unknown_step_is_refused(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Fragile", {"order_id": "F6"})
    with pytest.raises(RuntimeError):
        await workflow.run()
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(ValueError, match="'Nowhere'"):
        await workflow.retry(from_step="Nowhere")

    assert await persistence.load_workflow(workflow.id) == before
    assert workflow.status is WorkflowStatus.FAILED


async def test_an_invalid_merged_state_is_never_stored(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("BadMerge", {"order_id": "F7", "amount": 5})
    await workflow.next_step()
    before = await persistence.load_workflow(workflow.id)
    assert before is not None

    with pytest.raises(StateValidationError) as caught:
        await workflow.next_step()

    assert caught.value.step_name == "Corrupt"
    assert "Step 'Corrupt' left a state that does not validate as OrderState" in str(caught.value)
    assert "amount: Input should be a valid integer" in str(caught.value)
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Corrupt"
    assert loaded.error_message is not None
    assert loaded.error_message.startswith("StateValidationError: Step 'Corrupt'")
    # The stored state is the one before the step; the object agrees with the store.
    stored = await persistence.load_workflow(workflow.id)
    assert stored is not None
    assert stored.state == before.state
    assert stored.state["amount"] == 5
    assert stored.state["note"] is None
    assert workflow.state == loaded.state
    assert workflow.status is WorkflowStatus.FAILED


async def test_in_place_changes_of_a_failing_step_are_discarded(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Dirty", {"order_id": "F8"})
    await workflow.next_step()

    with pytest.raises(RuntimeError, match="touching the state"):
        await workflow.next_step()

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.state.note is None
    assert loaded.state.visited == ["Start"]
    assert workflow.state == loaded.state
