"""A trip booked in three steps and undone by three compensations, each counting its calls: the
steps of the durable-rollback tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from ruvon.models import StepContext

CALLS: Counter[tuple[str, str]] = Counter()
"""(workflow id, function name) -> how many times it ran."""


class Trip(BaseModel):
    trip_id: str
    booked: list[str] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)
    junk: list[str] = Field(default_factory=list)


def _count(context: StepContext, name: str) -> None:
    CALLS[(context.workflow_id, name)] += 1


def book_flight(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"booked": [*state.booked, "flight"]}


def book_hotel(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"booked": [*state.booked, "hotel"]}


def book_car(state: Trip, context: StepContext) -> dict[str, Any]:
    return {"booked": [*state.booked, "car"]}


def take_payment(state: Trip, context: StepContext) -> dict[str, Any]:
    state.junk.append("changed in place")  # discarded: the step fails
    raise RuntimeError("card declined")


def cancel_flight(state: Trip, context: StepContext) -> dict[str, Any]:
    _count(context, "cancel_flight")
    return {"cancelled": [*state.cancelled, "flight"]}


def cancel_hotel(state: Trip, context: StepContext) -> dict[str, Any]:
    _count(context, "cancel_hotel")
    return {"cancelled": [*state.cancelled, "hotel"]}


def cancel_car(state: Trip, context: StepContext) -> dict[str, Any]:
    _count(context, "cancel_car")
    return {"cancelled": [*state.cancelled, "car"]}


def cancel_hotel_fails(state: Trip, context: StepContext) -> dict[str, Any]:
    _count(context, "cancel_hotel_fails")
    state.junk.append("half-cancelled")  # discarded: the compensation fails
    raise RuntimeError("hotel API down")


def void_payment(state: Trip, context: StepContext) -> dict[str, Any]:
    _count(context, "void_payment")
    return {"cancelled": [*state.cancelled, "payment"]}
