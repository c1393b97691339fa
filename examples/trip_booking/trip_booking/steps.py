"""Step functions and their compensations: each booking step returns the booking's reference,
its compensation cancels it. The "services" are simulated; a real one would call an API with
the reference as idempotency key, so that a compensation run twice cancels once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ruvon import StepContext
from trip_booking.models import Trip


class PaymentDeclined(Exception):
    """The card was refused: the trip cannot be paid, every booking must be undone."""


def book_flight(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"flight": f"FL-{state.trip_id}", "price": state.price + Decimal("420.00")}


def book_hotel(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"hotel": f"HT-{state.trip_id}", "price": state.price + 95 * state.nights}


def rent_car(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"car": f"CR-{state.trip_id}", "price": state.price + 40 * state.nights}


def charge_card(state: Trip, context: StepContext) -> dict[str, Any]:
    if state.card.endswith("0002"):
        raise PaymentDeclined(f"card ending {state.card[-4:]} declined for {state.price} EUR")
    return {"payment": f"PAY-{state.trip_id}"}


def send_itinerary(state: Trip, context: StepContext) -> dict[str, Any]:
    return {}


def cancel_flight(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"flight": None, "cancelled": [*state.cancelled, f"{state.flight}"]}


def cancel_hotel(state: Trip, context: StepContext) -> dict[str, Any]:
    if state.destination == "Atlantis":
        raise ConnectionError("hotel booking API unreachable")
    return {"hotel": None, "cancelled": [*state.cancelled, f"{state.hotel}"]}


def return_car(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"car": None, "cancelled": [*state.cancelled, f"{state.car}"]}
