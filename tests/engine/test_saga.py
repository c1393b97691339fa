"""Saga mode: compensations run newest first, their results are merged, a failing one is
recorded and the rollback goes on; the status is FAILED_ROLLED_BACK."""

from __future__ import annotations

import pytest

from ruvon import WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import audit_log, audit_types


async def test_compensations_run_newest_first(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Checkout", {"order_id": "S1", "amount": 30})
    assert workflow.saga_mode is True  # ``saga_enabled: true`` in the file
    await workflow.next_step()  # Reserve, Charge and Notify (automate_next)
    stored = await persistence.load_workflow(workflow.id)
    assert stored is not None
    assert stored.saga_mode is True
    # Only steps with a compensate_function are stacked.
    assert [e["step_name"] for e in stored.completed_steps_stack] == ["Reserve", "Charge"]
    assert (stored.state["reserved"], stored.state["charged"]) == (True, 30)

    with pytest.raises(RuntimeError, match="no truck available") as caught:
        await workflow.next_step()

    assert caught.value.workflow_status == "FAILED_ROLLED_BACK"  # type: ignore[attr-defined]
    assert workflow.status is WorkflowStatus.FAILED_ROLLED_BACK
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED_ROLLED_BACK
    assert loaded.state.compensations == ["refund_card", "release_stock"]
    assert (loaded.state.reserved, loaded.state.charged) == (False, 0)
    assert loaded.completed_steps_stack == []
    assert loaded.error_message == "RuntimeError: no truck available"
    assert workflow.state == loaded.state

    log = await audit_log(persistence, workflow.id)
    tail = [(e.event_type, e.step_name) for e in log[-6:]]
    assert tail == [
        ("STEP_FAILED", "Ship"),
        ("COMPENSATION_STARTED", None),
        ("COMPENSATION_EXECUTED", "Charge"),
        ("COMPENSATION_EXECUTED", "Reserve"),
        ("COMPENSATION_COMPLETED", None),
        ("WORKFLOW_FAILED", "Ship"),
    ]
    assert log[-4].data == {
        "result": {"charged": 0, "compensations": ["refund_card"]},
    }
    assert (log[-1].old_status, log[-1].new_status) == ("ACTIVE", "FAILED_ROLLED_BACK")


async def test_a_failing_compensation_is_recorded_and_the_rollback_goes_on(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow(
        "CheckoutBrokenRefund", {"order_id": "S2", "amount": 30}
    )

    with pytest.raises(RuntimeError, match="no truck available"):
        await workflow.run()

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED_ROLLED_BACK
    # The refund failed (charged stays 30), the stock was still released.
    assert loaded.state.charged == 30
    assert loaded.state.reserved is False
    assert loaded.state.compensations == ["release_stock"]
    log = await audit_log(persistence, workflow.id)
    compensation = [(e.event_type, e.step_name) for e in log if "COMPENSATION" in e.event_type]
    assert compensation == [
        ("COMPENSATION_STARTED", None),
        ("COMPENSATION_FAILED", "Charge"),
        ("COMPENSATION_EXECUTED", "Reserve"),
        ("COMPENSATION_COMPLETED", None),
    ]
    failed = next(e for e in log if e.event_type == "COMPENSATION_FAILED")
    assert failed.data == {"error": "RuntimeError: refund service unavailable"}


@pytest.mark.parametrize("awaited", [True, False], ids=["awaited", "not-awaited"])
async def test_enable_saga_mode_at_run_time(
    builder: WorkflowBuilder,
    fresh: WorkflowBuilder,
    persistence: PersistenceProvider,
    awaited: bool,
) -> None:
    workflow = await builder.create_workflow("CheckoutPlain", {"order_id": "S3", "amount": 9})
    assert workflow.saga_mode is False

    if awaited:
        await workflow.enable_saga_mode()
    else:
        workflow.enable_saga_mode()

    assert workflow.saga_mode is True
    with pytest.raises(RuntimeError):
        await workflow.run()
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.saga_mode is True
    assert loaded.status is WorkflowStatus.FAILED_ROLLED_BACK
    assert loaded.state.compensations == ["refund_card", "release_stock"]
    assert "COMPENSATION_COMPLETED" in await audit_types(persistence, workflow.id)


async def test_saga_mode_survives_a_reload(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("CheckoutPlain", {"order_id": "S4", "amount": 9})
    workflow.enable_saga_mode()
    await workflow.next_step()  # Reserve, Charge: the flag is stored with this commit

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.saga_mode is True
    with pytest.raises(RuntimeError):
        await loaded.next_step()
    assert (await fresh.load_workflow(workflow.id)).state.compensations == [
        "refund_card",
        "release_stock",
    ]


async def test_without_saga_mode_nothing_is_compensated(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("CheckoutPlain", {"order_id": "S5", "amount": 9})

    with pytest.raises(RuntimeError):
        await workflow.run()

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.completed_steps_stack == []
    assert (loaded.state.reserved, loaded.state.charged) == (True, 9)
    assert loaded.state.compensations == []
    assert not [t for t in await audit_types(persistence, workflow.id) if "COMPENSATION" in t]
