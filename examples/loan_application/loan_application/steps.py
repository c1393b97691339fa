"""Step functions of the loan workflow: ``(state, context, **user_input) -> dict``.

The "credit bureau" and the "bank" are stand-ins for remote services: the bureau times out on
the first attempt of every check (the step's retry policy handles it), and the bank refuses
accounts starting with ``BLOCKED`` (the saga then releases the reserved funds).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loan_application.models import LoanState, Risk, UnderwriterDecision
from ruvon import StepContext

CENT = Decimal("0.01")
ANNUAL_RATE = Decimal("0.069")


def validate_application(state: LoanState, context: StepContext) -> dict[str, Any]:
    """Compute the monthly payment of an annuity loan; refuse loans above 5x income."""
    if state.amount > state.applicant.annual_income * 5:
        raise ValueError(
            f"{state.application_id}: {state.amount} is more than five times the income"
        )
    rate = ANNUAL_RATE / 12
    factor = (1 + rate) ** state.term_months
    payment = state.amount * rate * factor / (factor - 1)
    return {
        "monthly_payment": payment.quantize(CENT, rounding=ROUND_HALF_UP),
        "history": [*state.history, "validated"],
    }


def check_credit(state: LoanState, context: StepContext) -> dict[str, Any]:
    """Ask the credit bureau, which times out on the first attempt."""
    if context.attempt == 1:
        raise TimeoutError("credit bureau did not answer in time")
    score = 560 + sum(map(ord, state.applicant.name)) % 280
    return {
        "credit_score": score,
        "credit_checked_at": datetime.now(timezone.utc),
        "risk": Risk.LOW if score >= 720 else Risk.MEDIUM if score >= 620 else Risk.HIGH,
        "history": [*state.history, f"credit checked (attempt {context.attempt})"],
    }


def auto_approve(state: LoanState, context: StepContext) -> dict[str, Any]:
    return {"approved": True, "approver": "policy", "history": [*state.history, "auto-approved"]}


def record_decision(state: LoanState, context: StepContext) -> dict[str, Any]:
    """The underwriter's decision, validated against UnderwriterDecision."""
    decision = context.validated_input
    assert isinstance(decision, UnderwriterDecision)
    verdict = "approved" if decision.approved else "declined"
    return {
        "approved": decision.approved,
        "approver": decision.underwriter,
        "conditions": decision.conditions,
        "history": [*state.history, f"{verdict} by {decision.underwriter}"],
    }


def reserve_funds(state: LoanState, context: StepContext) -> dict[str, Any]:
    return {"funds_reserved": state.amount, "history": [*state.history, "funds reserved"]}


def release_funds(state: LoanState, context: StepContext) -> dict[str, Any]:
    """Compensation of reserve_funds: the released amount (a Decimal) goes to the audit log."""
    return {"funds_reserved": Decimal("0.00"), "history": [*state.history, "funds released"]}


def disburse(state: LoanState, context: StepContext) -> dict[str, Any]:
    if state.applicant.bank_account.startswith("BLOCKED"):
        raise RuntimeError(f"bank refused the transfer to {state.applicant.bank_account}")
    return {
        "disbursement_id": uuid.uuid5(uuid.NAMESPACE_URL, f"loan:{state.application_id}"),
        "history": [*state.history, f"{state.amount} disbursed"],
    }


def close_loan(state: LoanState, context: StepContext) -> dict[str, Any]:
    return {
        "outcome": f"disbursed {state.amount}, {state.monthly_payment}/month, "
        f"approved by {state.approver}"
    }


def decline(state: LoanState, context: StepContext) -> dict[str, Any]:
    reason = "credit score" if (state.credit_score or 0) < 600 else f"declined by {state.approver}"
    return {"approved": False, "outcome": f"declined ({reason})"}
