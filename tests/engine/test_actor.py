"""Who did it: ``actor=`` on next_step, resume, retry, cancel and jump_to_step is recorded as the
audit entries' ``user_id``, next to the input values; SecretStr input fields are masked."""

from __future__ import annotations

import pytest

from ruvon import WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import ConfigDir, audit_log, workflow

MONEY = "tests.support.money_steps"


@pytest.fixture
def signoff(config: ConfigDir) -> ConfigDir:
    config.write(
        "SignOff",
        workflow(
            "SignOff",
            f"""
            - name: Prepare
              function: {MONEY}.note
              automate_next: true
            - name: Approve
              type: HUMAN_IN_LOOP
              function: {MONEY}.sign_off
              input_model: {MONEY}.SignOffInput
            - name: Pay
              function: {MONEY}.pay_out
            - name: Fail
              function: {MONEY}.bank_down
            """,
            state_model=f"{MONEY}.MoneyState",
        ),
    )
    return config


async def test_the_actor_and_masked_input_are_audited(
    signoff: ConfigDir, persistence: PersistenceProvider
) -> None:
    workflow_ = await signoff.builder(persistence).create_workflow("SignOff", {})
    await workflow_.next_step(actor="clerk-7")
    assert workflow_.status is WorkflowStatus.WAITING_HUMAN

    # A second process: another builder loads the run and a person signs off.
    loaded = await signoff.builder(persistence).load_workflow(workflow_.id)
    await loaded.resume({"approver": "Grace", "pin": "4711"}, actor="underwriter-grace")

    log = await audit_log(persistence, workflow_.id)
    by_actor = {(e.event_type, e.step_name): e.user_id for e in log}
    assert by_actor[("STEP_EXECUTED", "Prepare")] == "clerk-7"
    assert by_actor[("WORKFLOW_PAUSED", "Approve")] == "clerk-7"
    assert by_actor[("WORKFLOW_RESUMED", "Approve")] == "underwriter-grace"
    assert by_actor[("STEP_EXECUTED", "Approve")] == "underwriter-grace"
    approve = next(e for e in log if (e.event_type, e.step_name) == ("STEP_EXECUTED", "Approve"))
    assert approve.data is not None
    assert approve.data["input"] == {"approver": "Grace", "pin": "**********"}
    assert "4711" not in str([e.data for e in log])
    assert loaded.state.approver == "Grace"


async def test_retry_cancel_and_jump_record_their_actor(
    signoff: ConfigDir, persistence: PersistenceProvider
) -> None:
    workflow_ = await signoff.builder(persistence).create_workflow("SignOff", {})
    await workflow_.next_step()
    await workflow_.resume({"approver": "Grace", "pin": "1"})
    await workflow_.next_step(actor="batch")  # Pay
    with pytest.raises(RuntimeError, match="bank is down"):
        await workflow_.next_step(actor="batch")
    await workflow_.retry(actor="ops-1")
    await workflow_.jump_to_step("Pay", actor="ops-2")
    await workflow_.cancel("customer withdrew", actor="ops-3")

    log = await audit_log(persistence, workflow_.id)
    actors = [(e.event_type, e.user_id) for e in log[-5:]]
    assert actors == [
        ("STEP_FAILED", "batch"),
        ("WORKFLOW_FAILED", "batch"),
        ("WORKFLOW_RETRIED", "ops-1"),
        ("WORKFLOW_JUMPED", "ops-2"),
        ("WORKFLOW_CANCELLED", "ops-3"),
    ]
    # Without an actor nothing is attributed.
    first = next(e for e in log if e.event_type == "STEP_EXECUTED")
    assert first.user_id is None
