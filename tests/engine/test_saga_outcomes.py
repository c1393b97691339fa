"""How a saga ends: FAILED_ROLLED_BACK only when a compensation ran (then the run is final),
FAILED (retryable) when there was nothing to undo; compensation results go through the codec,
and a rollback whose start cannot be committed is visible and runs no compensation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ruvon import WorkflowStateError, WorkflowStatus
from ruvon.errors import PersistenceError
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider, WorkflowCommit
from tests.support import money_steps
from tests.support.config import ConfigDir, audit_log, workflow

MONEY = "tests.support.money_steps"


def _saga(
    config: ConfigDir, name: str, *, refund: str = "refund_decimal", fail_first: bool = False
) -> None:
    failing = f"""
            - name: Fail
              type: STANDARD
              function: {MONEY}.bank_down
    """
    steps = f"""
            - name: Pay
              type: STANDARD
              function: {MONEY}.pay_out
              compensate_function: {MONEY}.{refund}
              automate_next: true
            - name: Fail
              type: STANDARD
              function: {MONEY}.bank_down
            """
    if fail_first:
        steps = f"""
            - name: Note
              type: STANDARD
              function: {MONEY}.note
              automate_next: true
            {failing.strip()}
            - name: Pay
              type: STANDARD
              function: {MONEY}.pay_out
              compensate_function: {MONEY}.{refund}
            """
    config.write(
        name,
        workflow(name, steps, header="saga_enabled: true", state_model=f"{MONEY}.MoneyState"),
    )


async def test_a_decimal_compensation_result_is_committed_and_the_run_is_final(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _saga(config, "Refund")
    workflow_ = await config.builder(persistence).create_workflow("Refund", {})

    with pytest.raises(RuntimeError, match="bank is down") as caught:
        await workflow_.next_step()

    assert caught.value.workflow_status == "FAILED_ROLLED_BACK"  # type: ignore[attr-defined]
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "FAILED_ROLLED_BACK"
    assert stored.state["refunded"] == "250.00"
    assert stored.completed_steps_stack == []
    log = await audit_log(persistence, workflow_.id)
    executed = next(e for e in log if e.event_type == "COMPENSATION_EXECUTED")
    assert executed.data == {"result": {"refunded": "250.00", "history": ["paid", "refunded"]}}
    assert money_steps.REFUNDS[workflow_.id] == 1

    loaded = await config.builder(persistence).load_workflow(workflow_.id)
    for action in (loaded.next_step, loaded.retry, workflow_.next_step, workflow_.retry):
        with pytest.raises(WorkflowStateError, match="is FAILED_ROLLED_BACK and cannot be"):
            await action()
    assert money_steps.REFUNDS[workflow_.id] == 1
    assert loaded.state.refunded == Decimal("250.00")


async def test_nothing_to_compensate_ends_failed_and_retryable(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _saga(config, "EarlyFail", fail_first=True)
    workflow_ = await config.builder(persistence).create_workflow(
        "EarlyFail", {}, idempotency_key=f"early-{id(config)}"
    )

    with pytest.raises(RuntimeError, match="bank is down") as caught:
        await workflow_.next_step()

    assert caught.value.workflow_status == "FAILED"  # type: ignore[attr-defined]
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "FAILED"
    types = [e.event_type for e in await audit_log(persistence, workflow_.id)]
    assert "COMPENSATION_STARTED" not in types
    await workflow_.retry()
    assert workflow_.status is WorkflowStatus.ACTIVE
    assert workflow_.current_step_name == "Fail"


async def test_an_unstorable_compensation_result_is_recorded_as_failed(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _saga(config, "BadRefund", refund="refund_unstorable")
    workflow_ = await config.builder(persistence).create_workflow("BadRefund", {})

    with pytest.raises(RuntimeError, match="bank is down"):
        await workflow_.next_step()

    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "FAILED_ROLLED_BACK"
    log = await audit_log(persistence, workflow_.id)
    failed = next(e for e in log if e.event_type == "COMPENSATION_FAILED")
    assert failed.step_name == "Pay"
    assert failed.data is not None
    assert "Step 'Pay' returned a value that cannot be stored at 'receipt'" in failed.data["error"]
    assert money_steps.REFUNDS[workflow_.id] == 1


class _CommitsFailAfterArming(SQLitePersistenceProvider):
    """A real SQLite store whose commits fail once armed: a disk that filled up mid-rollback."""

    armed = False

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        if self.armed:
            raise PersistenceError("database or disk is full")
        return await super().commit_workflow(commit)


async def test_a_rollback_whose_start_cannot_be_recorded_runs_nothing(
    config: ConfigDir, tmp_path: Path
) -> None:
    store = _CommitsFailAfterArming(str(tmp_path / "full.db"))
    config.write(
        "DiskFull",
        workflow(
            "DiskFull",
            f"""
            - name: Pay
              type: STANDARD
              function: {MONEY}.pay_out
              compensate_function: {MONEY}.refund_decimal
            - name: Fail
              type: STANDARD
              function: {MONEY}.bank_down
            """,
            header="saga_enabled: true",
            state_model=f"{MONEY}.MoneyState",
        ),
    )
    try:
        workflow_ = await config.builder(store).create_workflow("DiskFull", {})
        await workflow_.next_step()  # Pay, committed
        store.armed = True  # the disk fills up before Fail's failure is recorded

        with pytest.raises(RuntimeError, match="bank is down") as caught:
            await workflow_.next_step()

        assert isinstance(caught.value.commit_error, PersistenceError)  # type: ignore[attr-defined]
        notes = getattr(caught.value, "__notes__", [])
        assert any("Recording this failure of step 'Fail'" in note for note in notes)
        # The rollback is committed before any compensation runs: nothing was refunded.
        assert workflow_.id not in money_steps.REFUNDS
        with pytest.raises(WorkflowStateError, match="cannot run from this object"):
            await workflow_.next_step()
        assert workflow_.id not in money_steps.REFUNDS
        store.armed = False
        stored = await store.load_workflow(workflow_.id)
        assert stored is not None
        assert stored.status == "ACTIVE"  # unchanged: the failure was never recorded
        assert stored.current_step == "Fail"
    finally:
        await store.close()
