"""The state is validated before every commit: a step that leaves it invalid (in place, at the
top or deep inside) fails by field and step; a stored state that no longer validates loads with
an error naming the run, and the run can still be inspected and cancelled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ruvon import StateValidationError, StoredStateError, WorkflowStateError, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider, WorkflowCommit, WorkflowUpdate
from tests.support.config import ConfigDir, audit_log, workflow

MONEY = "tests.support.money_steps"


def _write(config: ConfigDir, name: str, first: str, function: str) -> None:
    config.write(
        name,
        workflow(
            name,
            f"""
            - name: {first}
              type: STANDARD
              function: {MONEY}.add_applicant
            - name: Change
              type: STANDARD
              function: {MONEY}.{function}
            """,
            state_model=f"{MONEY}.MoneyState",
        ),
    )


@pytest.mark.parametrize(
    ("function", "field"),
    [("corrupt_in_place", "amount"), ("corrupt_nested_in_place", "applicant.income")],
)
async def test_an_invalid_in_place_change_fails_the_step(
    config: ConfigDir, persistence: PersistenceProvider, function: str, field: str
) -> None:
    _write(config, "InPlace", "Apply", function)
    builder = config.builder(persistence)
    workflow_ = await builder.create_workflow("InPlace", {"amount": "10"})
    await workflow_.next_step()

    with pytest.raises(StateValidationError) as caught:
        await workflow_.next_step()

    assert caught.value.step_name == "Change"
    assert f"Step 'Change' left a state that does not validate as MoneyState: {field}:" in str(
        caught.value
    )
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert stored.state["amount"] == "10"
    assert stored.state["applicant"]["income"] == "100.00"
    # The run loads (its stored state is the valid one) and can be retried.
    loaded = await config.builder(persistence).load_workflow(workflow_.id)
    assert loaded.state.amount == Decimal("10")
    await loaded.retry()
    assert loaded.status is WorkflowStatus.ACTIVE


async def test_a_coercible_in_place_change_is_coerced(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _write(config, "Coerce", "Apply", "coerce_in_place")
    workflow_ = await config.builder(persistence).create_workflow("Coerce", {})
    await workflow_.run()

    assert workflow_.status is WorkflowStatus.COMPLETED
    assert workflow_.state.amount == Decimal(5)
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.state["amount"] == "5"


async def test_a_stored_state_that_no_longer_validates(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _write(config, "Drift", "Apply", "note")
    builder = config.builder(persistence)
    workflow_ = await builder.create_workflow("Drift", {"amount": "3"})
    await workflow_.next_step()
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    # What a model change (or a hand edit) leaves behind.
    broken = {**stored.state, "amount": "three"}
    await persistence.commit_workflow(
        WorkflowCommit(
            WorkflowUpdate(
                workflow_id=stored.id,
                status=stored.status,
                state=broken,
                current_step=stored.current_step,
                current_step_index=stored.current_step_index,
                metadata=stored.metadata,
            ),
            expected_version=stored.version,
        )
    )

    with pytest.raises(StoredStateError) as caught:
        await builder.load_workflow(workflow_.id)

    assert caught.value.workflow_id == workflow_.id
    assert f"The stored state of workflow '{workflow_.id}' does not validate as MoneyState" in (
        str(caught.value)
    )
    assert "amount: Input should be a valid decimal" in str(caught.value)
    assert caught.value.raw_state["amount"] == "three"

    raw = await builder.load_workflow(workflow_.id, validate_state=False)
    assert raw.state["amount"] == "three"
    with pytest.raises(WorkflowStateError, match="cannot run from this object"):
        await raw.next_step()
    await raw.cancel("model changed", actor="ops")
    after = await persistence.load_workflow(workflow_.id)
    assert after is not None
    assert after.status == "CANCELLED"
    assert after.state["amount"] == "three"  # nothing was lost
    cancelled = (await audit_log(persistence, workflow_.id))[-1]
    assert (cancelled.event_type, cancelled.user_id) == ("WORKFLOW_CANCELLED", "ops")
