"""The state of an order on its way from checkout to the carrier.

Money is ``Decimal`` from end to end. The answers of the three (simulated) services record the
worker thread that fetched them, so a reader can see that they ran at the same time.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0, decimal_places=2)


class Reservation(BaseModel):
    """The stock service's hold on the ordered quantities."""

    reservation_id: str
    units: int
    thread: str


class FraudCheck(BaseModel):
    score: int = Field(ge=0, le=100)
    verdict: str
    thread: str


class ShippingQuote(BaseModel):
    carrier: str
    price: Decimal = Field(ge=0, decimal_places=2)
    thread: str


class Allocation(BaseModel):
    """Which warehouse ships one order line."""

    warehouse: str
    quantity: int


class Package(BaseModel):
    package_id: str
    warehouse: str
    contents: dict[str, int]


class Shipment(BaseModel):
    package_id: str
    tracking_number: str


class FulfillmentState(BaseModel):
    order_id: str
    customer: str
    country: str = Field(min_length=2, max_length=2)
    items: list[LineItem] = Field(min_length=1)
    subtotal: Decimal = Decimal("0.00")
    # Filled by one stage: three services asked at the same time.
    reservation: Reservation | None = None
    fraud: FraudCheck | None = None
    shipping: ShippingQuote | None = None
    # Charge_Payment, once all three have answered.
    charged: Decimal = Decimal("0.00")
    payment_id: str | None = None
    # The per-line fan-out, merged DEEP: every task adds its keys to these mappings.
    allocations: dict[str, Allocation] = Field(default_factory=dict)
    by_warehouse: dict[str, dict[str, int]] = Field(default_factory=dict)
    # One package per warehouse, then one LOOP iteration per package.
    packages: list[Package] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    loop_results: list[dict] = Field(default_factory=list)
    loop_iterations: int = 0
    outcome: str | None = None
