"""Creating and loading: idempotency keys, optimistic concurrency between two drivers, invalid
initial data, unknown types and unknown ids."""

from __future__ import annotations

import uuid

import pytest

from ruvon import (
    ConcurrencyConflictError,
    StateValidationError,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from ruvon.builder import WorkflowBuilder
from ruvon.errors import PersistenceError
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import audit_log, audit_types


async def test_the_same_idempotency_key_returns_the_same_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    first = await builder.create_workflow(
        "Simple", {"order_id": "K1", "amount": 1}, idempotency_key="order-K1"
    )
    await first.next_step()

    # Another builder (another process), the same request: nothing new is stored.
    again = await fresh.create_workflow(
        "Simple", {"order_id": "K1", "amount": 1}, idempotency_key="order-K1"
    )

    assert again.id == first.id
    assert again.idempotency_key == "order-K1"
    assert again.state.order_id == "K1"
    assert again.current_step == "Two"  # the existing workflow, as it is now
    assert again.version == first.version
    assert len(await persistence.list_workflows()) == 1
    assert (await audit_types(persistence, first.id)).count("WORKFLOW_STARTED") == 1

    other = await builder.create_workflow("Simple", {"order_id": "K2"}, idempotency_key="K2")
    assert other.id != first.id
    assert len(await persistence.list_workflows()) == 2


async def test_a_stale_driver_cannot_advance_the_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    created = await builder.create_workflow("Simple", {"order_id": "C1"})
    first = await fresh.load_workflow(created.id)
    second = await fresh.load_workflow(created.id)
    assert first.version == second.version

    await first.next_step()

    with pytest.raises(ConcurrencyConflictError) as caught:
        await second.next_step()

    assert isinstance(caught.value, PersistenceError)
    assert caught.value.workflow_id == created.id
    assert caught.value.expected_version == second.version
    # The store shows the first writer's step only, recorded once.
    stored = await fresh.load_workflow(created.id)
    assert stored.state.visited == ["One"]
    assert stored.current_step == "Two"
    assert stored.version == first.version
    executed = [
        e.step_name
        for e in await audit_log(persistence, created.id)
        if e.event_type == "STEP_EXECUTED"
    ]
    assert executed == ["One"]
    assert len(await persistence.get_workflow_metrics(workflow_id=created.id)) == 1
    # The loser's object still shows what is stored for it, not its own lost step.
    assert second.state.visited == []
    assert second.current_step == "One"
    assert second.status is WorkflowStatus.ACTIVE

    # Reloaded, it continues from where the winner left off.
    reloaded = await fresh.load_workflow(created.id)
    await reloaded.next_step()
    assert (await fresh.load_workflow(created.id)).state.visited == ["One", "Two"]


async def test_a_stale_cancel_is_refused_too(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    created = await builder.create_workflow("Simple", {"order_id": "C2"})
    stale = await fresh.load_workflow(created.id)
    await created.next_step()

    with pytest.raises(ConcurrencyConflictError):
        await stale.cancel("late")

    assert (await fresh.load_workflow(created.id)).status is WorkflowStatus.ACTIVE


async def test_invalid_initial_data_stores_nothing(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    with pytest.raises(StateValidationError) as caught:
        await builder.create_workflow("Simple", {"amount": "a lot"})

    message = str(caught.value)
    assert "Initial data for workflow type 'Simple' does not validate as OrderState" in message
    assert "order_id: Field required" in message
    assert "amount: Input should be a valid integer" in message
    assert caught.value.workflow_type == "Simple"

    assert await persistence.list_workflows() == []


async def test_an_unknown_type_is_a_value_error(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    with pytest.raises(ValueError) as caught:
        await builder.create_workflow("Nope", {"order_id": "X"})

    assert str(caught.value) == "Workflow type 'Nope' not found in registry."
    assert await persistence.list_workflows() == []


async def test_loading_a_missing_workflow(builder: WorkflowBuilder) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(WorkflowNotFoundError) as caught:
        await builder.load_workflow(missing)

    assert isinstance(caught.value, ValueError)
    assert caught.value.workflow_id == missing
    assert missing in str(caught.value)


async def test_create_workflow_stores_what_it_was_given(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow(
        "Simple",
        {"order_id": "M1", "amount": 3},
        owner_id="u-1",
        org_id="org-1",
        data_region="eu",
        priority=2,
        metadata={"channel": "web"},
    )

    loaded = await fresh.load_workflow(workflow.id)
    assert (loaded.owner_id, loaded.org_id, loaded.data_region) == ("u-1", "org-1", "eu")
    assert loaded.priority == 2
    assert loaded.metadata == {"channel": "web"}
    assert loaded.workflow_type == "Simple"
    assert loaded.workflow_version == "1"
    assert loaded.status is WorkflowStatus.ACTIVE
    assert loaded.current_step == "One"
    assert loaded.state == workflow.state
    assert loaded.state_model_path == "tests.support.order_steps.OrderState"
    started = (await audit_log(persistence, workflow.id))[0]
    assert started.event_type == "WORKFLOW_STARTED"
    assert started.new_status == "ACTIVE"
    assert started.user_id == "u-1"
    assert started.data == {"workflow_type": "Simple", "workflow_version": "1"}
    assert [r.id for r in await persistence.list_workflows(owner_id="u-1")] == [workflow.id]
