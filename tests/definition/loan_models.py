"""State models of the condition checks: a loan with a nested applicant, an alias, a property
and a dict field, and a model that accepts extra keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MODELS = "tests.definition.loan_models"
"""This module, as workflow files name it."""


class Applicant(BaseModel):
    """Who asks for the loan."""

    name: str = ""
    income: int = 0


class LoanState(BaseModel):
    """The state of the loan workflows."""

    amount: int = 0
    rate: float = Field(0.0, alias="interest_rate")
    applicant: Applicant | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None
    visited: list[str] = Field(default_factory=list)

    @property
    def doubled(self) -> int:
        """A computed value conditions may read."""
        return self.amount * 2


class OpenState(BaseModel):
    """A state that keeps keys it does not declare."""

    model_config = ConfigDict(extra="allow")

    amount: int = 0
    applicant: Applicant | None = None
