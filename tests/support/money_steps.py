"""A money-handling state (Decimal, dates, UUID, Enum, nested models, tuples) and the step
functions of the hardening tests: what a loan or payment workflow really stores."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ruvon.models import StepContext

PAYMENT_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


class Risk(str, Enum):
    LOW = "low"
    HIGH = "high"


class Applicant(BaseModel):
    name: str
    income: Decimal
    born: date


class MoneyState(BaseModel):
    """Pydantic's default ``extra='ignore'``: unknown result keys stay out of the state."""

    amount: Decimal = Decimal("0")
    applicant: Applicant | None = None
    decided_on: date | None = None
    decided_at: datetime | None = None
    payment_id: uuid.UUID | None = None
    risk: Risk | None = None
    history: list[str] = Field(default_factory=list)
    refunded: Decimal | None = None
    approver: str | None = None


class StrictMoneyState(MoneyState):
    model_config = ConfigDict(extra="forbid")


class OpenMoneyState(MoneyState):
    model_config = ConfigDict(extra="allow")


class SignOffInput(BaseModel):
    """A typed approval; the PIN must never reach the audit log."""

    approver: str
    pin: SecretStr


REFUNDS: dict[str, int] = {}
"""workflow id -> how many times :func:`refund_decimal` ran."""


def typed_values(state: MoneyState, context: StepContext) -> dict[str, Any]:
    """Every type Pydantic serializes in JSON mode, in a result and (merged) in the state."""
    return {
        "amount": Decimal("1234.56"),
        "decided_on": date(2026, 12, 2),
        "decided_at": datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc),
        "payment_id": PAYMENT_ID,
        "risk": Risk.HIGH,
        "applicant": Applicant(name="Ada", income=Decimal("9000.10"), born=date(1990, 1, 2)),
        "limits": (Decimal("1.5"), Decimal("2.5")),
    }


def unstorable(state: MoneyState, context: StepContext) -> dict[str, Any]:
    return {"amount": Decimal("1"), "receipt": {"pdf": object()}}


def returns_tuple(state: MoneyState, context: StepContext) -> Any:
    return {"amount": Decimal("5")}, 200


def returns_text(state: MoneyState, context: StepContext) -> Any:
    return "approved"


def returns_unknown_key(state: MoneyState, context: StepContext) -> dict[str, Any]:
    return {"amount": Decimal("7"), "credit_score": 712}


def corrupt_in_place(state: MoneyState, context: StepContext) -> None:
    state.amount = "x"  # type: ignore[assignment]


def corrupt_nested_in_place(state: MoneyState, context: StepContext) -> None:
    assert state.applicant is not None
    state.applicant.income = "lots"  # type: ignore[assignment]


def coerce_in_place(state: MoneyState, context: StepContext) -> None:
    state.amount = 5  # type: ignore[assignment]  # an int is a valid Decimal


def add_applicant(state: MoneyState, context: StepContext) -> dict[str, Any]:
    return {
        "applicant": {"name": "Ada", "income": "100.00", "born": "1990-01-02"},
        "history": [*state.history, "applicant"],
    }


def pay_out(state: MoneyState, context: StepContext) -> dict[str, Any]:
    return {"history": [*state.history, "paid"], "amount": Decimal("250.00")}


def refund_decimal(state: MoneyState, context: StepContext) -> dict[str, Any]:
    REFUNDS[context.workflow_id] = REFUNDS.get(context.workflow_id, 0) + 1
    return {"refunded": state.amount, "history": [*state.history, "refunded"]}


def refund_unstorable(state: MoneyState, context: StepContext) -> dict[str, Any]:
    REFUNDS[context.workflow_id] = REFUNDS.get(context.workflow_id, 0) + 1
    return {"receipt": object()}


def bank_down(state: MoneyState, context: StepContext) -> dict[str, Any]:
    raise RuntimeError("bank is down")


def sign_off(state: MoneyState, context: StepContext) -> dict[str, Any]:
    payload = context.validated_input
    assert isinstance(payload, SignOffInput)
    return {"approver": payload.approver, "history": [*state.history, "signed"]}


def note(state: MoneyState, context: StepContext) -> dict[str, Any]:
    return {"history": [*state.history, context.step_name]}


def echo_previous(state: MoneyState, context: StepContext) -> dict[str, Any]:
    previous = sorted(context.previous_step_result or {})
    return {"history": [*state.history, f"previous:{','.join(previous)}"]}
