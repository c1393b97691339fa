"""The error body every error response has, and what the health check answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "ErrorResponse", "HealthResponse"]


class ErrorBody(BaseModel):
    type: str = Field(description="A stable, machine-readable kind, e.g. workflow_not_found.")
    message: str = Field(description="What is wrong, for a person.")
    details: dict[str, Any] | None = Field(
        default=None, description="Structured facts: field errors, the step, the conflicting run."
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorBody


class HealthResponse(BaseModel):
    status: Literal["healthy", "unhealthy"]
    service: str = "ruvon-server"
    version: str
    database: Literal["reachable", "unreachable"]
    detail: str | None = Field(default=None, description="Why the database is unreachable.")
