"""Step functions of the fulfillment workflow: ``(state, context, ...) -> dict``.

The stock, fraud and shipping services, the warehouses and the carrier are stand-ins for
remote systems. The three services answer after ``SERVICE_LATENCY`` seconds, as a network call
would; since they do not depend on each other, the workflow asks them at the same time.
"""

from __future__ import annotations

import threading
import time
import zlib
from decimal import Decimal
from typing import Any

from order_fulfillment.models import (
    Allocation,
    FraudCheck,
    FulfillmentState,
    LineItem,
    Package,
    Reservation,
    Shipment,
    ShippingQuote,
)
from ruvon import StepContext

CENT = Decimal("0.01")
SERVICE_LATENCY = 0.2
"""Seconds each of the three services takes to answer."""

STOCK: dict[str, dict[str, int]] = {
    "berlin": {"pen": 500, "notebook": 40},
    "leipzig": {"ink": 200, "notebook": 300},
}
"""Units on hand per warehouse; a line ships from the first warehouse that has all of it."""

SHIPPING_RATES: dict[str, tuple[str, Decimal]] = {
    "DE": ("DHL", Decimal("5.90")),
    "AT": ("DHL", Decimal("9.90")),
}


def _thread() -> str:
    return threading.current_thread().name


def validate_order(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """At checkout: refuse what cannot be shipped and compute the subtotal."""
    if state.country not in SHIPPING_RATES:
        raise ValueError(f"{state.order_id}: we do not ship to {state.country}")
    subtotal = sum((line.quantity * line.unit_price for line in state.items), Decimal("0"))
    return {"subtotal": subtotal.quantize(CENT)}


def reserve_stock(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """Ask the stock service to hold the ordered units."""
    time.sleep(SERVICE_LATENCY)
    units = sum(line.quantity for line in state.items)
    reservation = Reservation(reservation_id=f"RSV-{state.order_id}", units=units, thread=_thread())
    return {"reservation": reservation}


def check_fraud(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """Ask the fraud service for a risk score (0 to 100; 70 and above needs a review)."""
    time.sleep(SERVICE_LATENCY)
    score = zlib.crc32(f"{state.customer}:{state.country}".encode()) % 100
    verdict = "pass" if score < 70 else "review"
    return {"fraud": FraudCheck(score=score, verdict=verdict, thread=_thread())}


def quote_shipping(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """Ask the carrier for a price to the customer's country."""
    time.sleep(SERVICE_LATENCY)
    carrier, price = SHIPPING_RATES[state.country]
    return {"shipping": ShippingQuote(carrier=carrier, price=price, thread=_thread())}


def charge_payment(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """Charge goods and shipping, once stock is held and the fraud check has passed."""
    assert state.reservation is not None and state.fraud is not None and state.shipping is not None
    if state.fraud.verdict != "pass":
        raise RuntimeError(f"{state.order_id}: fraud score {state.fraud.score}, needs a review")
    return {"charged": state.subtotal + state.shipping.price, "payment_id": f"PAY-{state.order_id}"}


def allocate_line(state: FulfillmentState, context: StepContext, line: LineItem) -> dict[str, Any]:
    """One task of the fan-out: pick the warehouse that ships this line.

    Each task returns only its own keys inside ``allocations`` and ``by_warehouse``; the
    PARALLEL step merges them DEEP, so two lines from the same warehouse end up side by side
    instead of one replacing the other.
    """
    for warehouse, on_hand in STOCK.items():
        if on_hand.get(line.sku, 0) >= line.quantity:
            allocation = Allocation(warehouse=warehouse, quantity=line.quantity)
            return {
                "allocations": {line.sku: allocation.model_dump()},
                "by_warehouse": {warehouse: {line.sku: line.quantity}},
            }
    raise RuntimeError(f"no warehouse has {line.quantity} x {line.sku}")


def plan_packages(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    """One package per warehouse."""
    packages = [
        Package(package_id=f"{state.order_id}-P{number}", warehouse=warehouse, contents=contents)
        for number, (warehouse, contents) in enumerate(sorted(state.by_warehouse.items()), 1)
    ]
    return {"packages": packages}


def print_label(state: FulfillmentState, context: StepContext, package: Package) -> dict[str, Any]:
    """LOOP body, once per package: book the carrier and record the tracking number."""
    assert state.shipping is not None
    tracking = f"{state.shipping.carrier}{zlib.crc32(package.package_id.encode()):010d}"
    shipment = Shipment(package_id=package.package_id, tracking_number=tracking)
    return {"shipments": [*state.shipments, shipment]}


def complete_order(state: FulfillmentState, context: StepContext) -> dict[str, Any]:
    return {
        "outcome": f"{len(state.shipments)} packages shipped, {state.charged} EUR charged "
        f"({state.payment_id})"
    }
