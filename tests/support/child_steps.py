"""Step functions of the sub-workflow tests."""

from __future__ import annotations

from typing import Any

from ruvon.models import StartSubWorkflowDirective, StepContext
from tests.support.order_steps import OrderState

ALLOWED: set[str] = set()
"""Order ids for which :func:`book` succeeds."""


def book(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Fails until the test allows the order (a child whose id is not known in advance)."""
    if state.order_id not in ALLOWED:
        raise LookupError(f"no availability for {state.order_id}")
    return {"note": f"booked {state.order_id}"}


def delegate(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Starts a child from code (the directive form of SUB_WORKFLOW)."""
    raise StartSubWorkflowDirective("Grandchild", {"order_id": f"{state.order_id}-directed"})
