"""Step functions: ``(state, context, **user_input) -> dict``; the dict is merged into the state."""

from __future__ import annotations

from typing import Any

from order_approval.models import OrderState
from ruvon import StepContext


def validate_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Reject empty orders and compute the total."""
    if not state.items:
        raise ValueError(f"Order {state.order_id} has no items")
    total = sum(item.quantity * item.unit_price for item in state.items)
    return {"total": round(total, 2)}


def auto_approve(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Small orders need no manager."""
    return {"approved": True, "approver": "auto"}


def record_decision(state: OrderState, context: StepContext, **user_input: Any) -> dict[str, Any]:
    """Store the manager's decision (already validated against ApprovalInput)."""
    decision = context.validated_input
    return {
        "approved": decision.approved,
        "approver": decision.approver,
        "comment": decision.comment,
    }


def complete_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Hand the order over to fulfilment."""
    return {"outcome": f"fulfilled ({state.total:.2f} approved by {state.approver})"}


def reject_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Tell the customer."""
    return {"outcome": f"rejected by {state.approver}: {state.comment or 'no reason given'}"}
