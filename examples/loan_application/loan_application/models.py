"""The state of a loan application and the underwriter's typed decision."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from pydantic import BaseModel, Field, SecretStr


class Risk(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Applicant(BaseModel):
    name: str = Field(min_length=1)
    date_of_birth: date
    annual_income: Decimal = Field(gt=0, decimal_places=2)
    bank_account: str = Field(min_length=4)


class LoanState(BaseModel):
    """Money is Decimal, days are dates: stored as exact strings, read back as the same types."""

    application_id: str
    applicant: Applicant
    amount: Decimal = Field(gt=0, decimal_places=2)
    term_months: int = Field(gt=0, le=360)
    requested_on: date
    monthly_payment: Decimal | None = None
    credit_score: int | None = None
    credit_checked_at: datetime | None = None
    risk: Risk | None = None
    approved: bool | None = None
    approver: str | None = None
    conditions: str | None = None
    funds_reserved: Decimal = Decimal("0.00")
    disbursement_id: uuid.UUID | None = None
    outcome: str | None = None
    history: list[str] = Field(default_factory=list)


class UnderwriterDecision(BaseModel):
    """What an underwriter sends. The PIN confirms the signature and is masked in the audit log."""

    approved: bool
    underwriter: str = Field(min_length=1)
    conditions: str | None = None
    signature_pin: SecretStr
