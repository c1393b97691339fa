"""State and input models of the order-approval workflow."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: float = Field(ge=0)


class OrderState(BaseModel):
    """The workflow's state: the order and what happened to it."""

    order_id: str
    customer: str
    items: list[LineItem]
    total: float = 0.0
    approved: bool | None = None
    approver: str | None = None
    comment: str | None = None
    outcome: str | None = None


class ApprovalInput(BaseModel):
    """What a manager submits to approve or reject a large order."""

    approved: bool
    approver: str = Field(min_length=1)
    comment: str | None = None
