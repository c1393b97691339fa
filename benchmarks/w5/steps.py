"""W5's state model, its five step functions and the order every workflow starts with.

The state is an order with 20 line items (sku, name, qty, price, description) of about 5 KB as
JSON. Each step sets one field, so the engine's cost dominates the step body's.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from ruvon import StepContext

ITEMS = 20
DESCRIPTION_CHARS = 160
STEP_FIELDS = ("validated", "priced", "reserved", "invoiced", "shipped")
"""The field each step sets, in step order; a completed workflow has all of them True."""


class LineItem(BaseModel):
    sku: str
    name: str
    qty: int
    price: float
    description: str


class OrderState(BaseModel):
    """W5's state: the order and one flag per step."""

    order_id: str
    customer: str
    items: list[LineItem]
    validated: bool = False
    priced: bool = False
    reserved: bool = False
    invoiced: bool = False
    shipped: bool = False


def validate(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"validated": True}


def price(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"priced": True}


def reserve(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"reserved": True}


def invoice(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"invoiced": True}


def ship(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"shipped": True}


def _description(n: int) -> str:
    text = f"Line item {n}: a durable widget with a long catalogue description. "
    return (text * (DESCRIPTION_CHARS // len(text) + 1))[:DESCRIPTION_CHARS]


_ITEMS: list[dict[str, Any]] = [
    {
        "sku": f"SKU-{n:05d}",
        "name": f"Widget model {n}",
        "qty": n % 7 + 1,
        "price": round(3.5 + n * 1.25, 2),
        "description": _description(n),
    }
    for n in range(ITEMS)
]


def make_order(order_id: str) -> dict[str, Any]:
    """The initial data of one workflow (the items are shared; nothing mutates them)."""
    return {"order_id": order_id, "customer": "customer-0042", "items": _ITEMS}


def completed_state(order_id: str) -> dict[str, Any]:
    """The state a completed workflow ends with, as JSON-ready data."""
    state = OrderState.model_validate(make_order(order_id)).model_dump(mode="json")
    return {**state, **dict.fromkeys(STEP_FIELDS, True)}


def state_json_bytes() -> int:
    """The size of a completed workflow's state serialized as JSON."""
    return len(orjson.dumps(completed_state("W5-000000")))
