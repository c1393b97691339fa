"""State and input models of the order, its shipment and the notice it sends."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: float = Field(ge=0)
    weight_kg: float = Field(gt=0)


class OrderState(BaseModel):
    """The parent workflow's state."""

    order_id: str
    customer: str
    address: str
    items: list[LineItem]
    total: float = 0.0
    tracking_number: str | None = None
    outcome: str | None = None
    sub_workflow_results: dict[str, Any] = Field(default_factory=dict)
    """Filled in by the SUB_WORKFLOW step: child id -> its type, status, state, final result."""
    spawned_workflows: list[str] = Field(default_factory=list)
    """Filled in by the FIRE_AND_FORGET step: the ids of the runs it started."""
    spawned_workflow_id: str | None = None
    message: str | None = None


class ShipmentState(BaseModel):
    """The child workflow's state: what the warehouse packs and sends."""

    order_id: str
    address: str
    items: list[LineItem]
    weight_kg: float = 0.0
    parcels: int = 0
    confirmed_by: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None


class WarehouseConfirmation(BaseModel):
    """What the warehouse submits once the order is packed."""

    confirmed_by: str = Field(min_length=1)
    parcels: int = Field(gt=0)


class NoticeState(BaseModel):
    """The spawned notice's state."""

    to: str
    subject: str
    sent: bool = False
