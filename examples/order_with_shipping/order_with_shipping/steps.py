"""Step functions: ``(state, context, **user_input) -> dict``; the dict is merged into the state."""

from __future__ import annotations

from typing import Any

from order_with_shipping.models import NoticeState, OrderState, ShipmentState
from ruvon import StepContext

# -- the order (parent) -------------------------------------------------------------------


def validate_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Reject empty orders and compute the total."""
    if not state.items:
        raise ValueError(f"Order {state.order_id} has no items")
    total = sum(item.quantity * item.unit_price for item in state.items)
    return {"total": round(total, 2)}


def record_shipment(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Take the tracking number from the completed Shipment (``sub_workflow_results``)."""
    [shipment] = [
        outcome
        for outcome in state.sub_workflow_results.values()
        if outcome["workflow_type"] == "Shipment" and outcome["status"] == "COMPLETED"
    ]
    return {"tracking_number": shipment["state"]["tracking_number"]}


def complete_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"outcome": f"shipped ({state.total:.2f}, tracking {state.tracking_number})"}


# -- the shipment (child) -----------------------------------------------------------------


def pack(state: ShipmentState, context: StepContext) -> dict[str, Any]:
    """Weigh the order; the warehouse then confirms how many parcels it made."""
    weight = sum(item.quantity * item.weight_kg for item in state.items)
    return {"weight_kg": round(weight, 2)}


def record_confirmation(
    state: ShipmentState, context: StepContext, **user_input: Any
) -> dict[str, Any]:
    """Store the warehouse's confirmation (already validated against WarehouseConfirmation)."""
    confirmation = context.validated_input
    return {"confirmed_by": confirmation.confirmed_by, "parcels": confirmation.parcels}


def book_carrier(state: ShipmentState, context: StepContext) -> dict[str, Any]:
    """Book a carrier: parcels over 20 kg on average go by freight."""
    carrier = "freight" if state.weight_kg / state.parcels > 20 else "parcel-post"
    return {"carrier": carrier, "tracking_number": f"TRK-{state.order_id}-{state.parcels}"}


# -- the notice (spawned) -----------------------------------------------------------------


def send_email(state: NoticeState, context: StepContext) -> dict[str, Any]:
    """Stands in for an email service."""
    return {"sent": True}
