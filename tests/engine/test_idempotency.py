"""An idempotency key names one request: the same key with the same type and initial data
returns the existing run; with different data it is an IdempotencyConflictError."""

from __future__ import annotations

import uuid

import pytest

from ruvon import IdempotencyConflictError
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider


async def test_the_same_key_and_payload_return_the_existing_run(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    key = f"order-{uuid.uuid4()}"
    first = await builder.create_workflow(
        "Simple", {"order_id": "I1", "amount": 5}, idempotency_key=key
    )
    # The same payload, keys in another order: the same request.
    again = await builder.create_workflow(
        "Simple", {"amount": 5, "order_id": "I1"}, idempotency_key=key
    )

    assert again.id == first.id
    assert await persistence.count_workflows() == 1
    stored = await persistence.load_workflow(first.id)
    assert stored is not None
    assert stored.idempotency_key == key
    assert stored.idempotency_hash is not None


@pytest.mark.parametrize(
    ("workflow_type", "payload"),
    [
        ("Simple", {"order_id": "I2", "amount": 900_000}),
        ("Chain", {"order_id": "I2", "amount": 5}),
    ],
)
async def test_the_same_key_with_another_payload_is_a_conflict(
    builder: WorkflowBuilder,
    persistence: PersistenceProvider,
    workflow_type: str,
    payload: dict[str, object],
) -> None:
    key = f"order-{uuid.uuid4()}"
    first = await builder.create_workflow(
        "Simple", {"order_id": "I2", "amount": 5}, idempotency_key=key
    )

    with pytest.raises(IdempotencyConflictError) as caught:
        await builder.create_workflow(workflow_type, payload, idempotency_key=key)

    assert caught.value.workflow_id == first.id
    assert caught.value.idempotency_key == key
    assert f"Idempotency key '{key}' already belongs to workflow '{first.id}' (Simple)" in str(
        caught.value
    )
    assert await persistence.count_workflows() == 1
    stored = await persistence.load_workflow(first.id)
    assert stored is not None
    assert stored.state["amount"] == 5
