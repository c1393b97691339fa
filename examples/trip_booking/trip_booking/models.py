"""The state of the trip-booking saga."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class Trip(BaseModel):
    """A trip: what was booked (a reference per booking) and what was undone."""

    trip_id: str
    traveller: str
    destination: str
    nights: int = Field(gt=0)
    card: str
    price: Decimal = Decimal("0")
    flight: str | None = None
    hotel: str | None = None
    car: str | None = None
    payment: str | None = None
    cancelled: list[str] = Field(default_factory=list)
