"""State model of the browser tests' workflow."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class BatchState(BaseModel):
    order_id: str
    customer: str
    items: list[dict[str, Any]]
    closed: bool = False


class ReportState(BaseModel):
    title: str = "weekly"
    sales: int = 0
    stock: int = 0
    checked: bool = False
    price: float = 0.0
    published: bool = False
