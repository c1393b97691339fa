"""What a step returns: every JSON-mode type is stored by one codec on every store; a value the
codec cannot store, or a result that is not a dict, fails the step by name; result keys the
state model lacks follow the model's ``extra`` setting."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from decimal import Decimal

import pytest

from ruvon import StepResultError, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from tests.support import money_steps
from tests.support.config import ConfigDir, audit_log, workflow

MONEY = "tests.support.money_steps"


def _one_step(config: ConfigDir, name: str, function: str, model: str = "MoneyState") -> None:
    config.write(
        name,
        workflow(
            name,
            f"""
            - name: Act
              type: STANDARD
              function: {MONEY}.{function}
            - name: After
              type: STANDARD
              function: {MONEY}.note
            """,
            state_model=f"{MONEY}.{model}",
        ),
    )


async def test_json_mode_types_are_stored_and_read_back(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _one_step(config, "Typed", "typed_values")
    builder = config.builder(persistence)
    workflow_ = await builder.create_workflow("Typed", {})

    result, _ = await workflow_.next_step()

    assert result["amount"] == Decimal("1234.56")
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "ACTIVE"
    assert stored.state["amount"] == "1234.56"
    assert stored.state["decided_on"] == "2026-12-02"
    assert stored.state["payment_id"] == str(money_steps.PAYMENT_ID)
    assert stored.state["risk"] == "high"
    assert stored.state["applicant"] == {
        "name": "Ada",
        "income": "9000.10",
        "born": "1990-01-02",
    }
    executed = [e for e in await audit_log(persistence, workflow_.id) if e.step_name == "Act"]
    assert executed[0].data is not None
    assert executed[0].data["result"]["limits"] == ["1.5", "2.5"]
    assert executed[0].data["result"]["decided_at"].startswith("2026-12-02T09:30:00")
    loaded = await config.builder(persistence).load_workflow(workflow_.id)
    assert loaded.state.amount == Decimal("1234.56")
    assert loaded.state.applicant.born == date(1990, 1, 2)
    assert loaded.state.risk is money_steps.Risk.HIGH


async def test_a_value_the_codec_cannot_store_fails_the_step_by_key(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _one_step(config, "Unstorable", "unstorable")
    builder = config.builder(persistence)
    workflow_ = await builder.create_workflow("Unstorable", {})

    with pytest.raises(StepResultError) as caught:
        await workflow_.next_step()

    assert caught.value.step_name == "Act"
    assert caught.value.key == "receipt.pdf"
    assert "Step 'Act' returned a value that cannot be stored at 'receipt.pdf'" in str(caught.value)
    assert "object" in str(caught.value)
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == WorkflowStatus.FAILED.value
    assert stored.current_step == "Act"
    assert stored.state["amount"] == "0"
    assert stored.error_message is not None
    assert "receipt.pdf" in stored.error_message


@pytest.mark.parametrize(
    ("function", "type_name"), [("returns_tuple", "tuple"), ("returns_text", "str")]
)
async def test_a_result_that_is_not_a_dict_fails_the_step(
    config: ConfigDir, persistence: PersistenceProvider, function: str, type_name: str
) -> None:
    _one_step(config, "NotADict", function)
    builder = config.builder(persistence)
    workflow_ = await builder.create_workflow("NotADict", {})

    with pytest.raises(StepResultError) as caught:
        await workflow_.next_step()

    assert caught.value.step_name == "Act"
    assert str(caught.value).startswith(f"Step 'Act' returned {type_name} (")
    assert "must return a dict" in str(caught.value)
    stored = await persistence.load_workflow(workflow_.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert stored.state["amount"] == "0"  # nothing of the lost result was merged


async def test_an_unknown_key_is_kept_in_the_result_and_warned_once(
    config: ConfigDir, persistence: PersistenceProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # Warned once per process for each (type, step, key): a type name of this test's own.
    name = f"Unknown{uuid.uuid4().hex[:8]}"
    config.write(
        name,
        workflow(
            name,
            f"""
            - name: Score
              type: STANDARD
              function: {MONEY}.returns_unknown_key
              automate_next: true
            - name: Remember
              type: STANDARD
              function: {MONEY}.echo_previous
            """,
            state_model=f"{MONEY}.MoneyState",
        ),
    )
    builder = config.builder(persistence)
    caplog.set_level(logging.WARNING, logger="ruvon.workflow")
    first = await builder.create_workflow(name, {})
    second = await builder.create_workflow(name, {})

    result, _ = await first.next_step()
    await second.next_step()

    assert result == {"history": ["previous:amount,credit_score"]}  # Remember's, chained
    assert "credit_score" not in first.state.model_dump()
    assert first.state.history == ["previous:amount,credit_score"]
    warnings = [r.getMessage() for r in caplog.records if "credit_score" in r.getMessage()]
    assert len(warnings) == 1
    assert f"Step 'Score' of {name} returned key 'credit_score', which MoneyState" in warnings[0]
    log = await audit_log(persistence, first.id)
    executed = next(e for e in log if e.step_name == "Score" and e.event_type == "STEP_EXECUTED")
    assert executed.data is not None
    assert executed.data["result"] == {"amount": "7", "credit_score": 712}


async def test_an_unknown_key_fails_with_extra_forbid_and_is_kept_with_extra_allow(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    _one_step(config, "Forbid", "returns_unknown_key", "StrictMoneyState")
    _one_step(config, "Allow", "returns_unknown_key", "OpenMoneyState")
    builder = config.builder(persistence)

    strict = await builder.create_workflow("Forbid", {})
    with pytest.raises(ValueError, match="credit_score: Extra inputs are not permitted"):
        await strict.next_step()
    assert strict.status is WorkflowStatus.FAILED

    open_ = await builder.create_workflow("Allow", {})
    await open_.next_step()
    stored = await persistence.load_workflow(open_.id)
    assert stored is not None
    assert stored.state["credit_score"] == 712
