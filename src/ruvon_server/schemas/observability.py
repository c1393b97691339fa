"""A run's audit trail, execution log and metrics, and the figures across runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "AuditEntry",
    "LogLine",
    "MetricPointModel",
    "MetricsSummary",
    "Throughput",
    "ThroughputBucket",
    "TypeCounts",
]


class AuditEntry(BaseModel):
    id: int | None = None
    workflow_id: str | None = None
    event_type: str
    step_name: str | None = None
    old_status: str | None = None
    new_status: str | None = None
    data: dict[str, Any] | None = None
    user_id: str | None = Field(default=None, description="Who asked for it (the API key's user).")
    worker_id: str | None = None
    duration_ms: float | None = None
    timestamp: datetime | None = None


class LogLine(BaseModel):
    id: int | None = Field(
        default=None, description="None for a step's line derived from its audit entry."
    )
    workflow_id: str | None = None
    level: str
    message: str
    step_name: str | None = None
    metadata: dict[str, Any] | None = None
    logged_at: datetime | None = None


class MetricPointModel(BaseModel):
    id: int | None = None
    workflow_id: str | None = None
    workflow_type: str | None = None
    metric_name: str
    metric_value: float
    unit: str | None = None
    step_name: str | None = None
    tags: dict[str, Any] | None = None
    recorded_at: datetime | None = None


class TypeCounts(BaseModel):
    """Runs of one type created in the window, by status group."""

    workflow_type: str
    total: int
    running: int = Field(description="ACTIVE, PENDING_ASYNC, PENDING_SUB_WORKFLOW")
    waiting: int = Field(description="PAUSED, WAITING_HUMAN, WAITING_CHILD_HUMAN_INPUT")
    completed: int
    failed: int = Field(description="Every FAILED* status")
    cancelled: int


class MetricsSummary(BaseModel):
    hours: float
    since: datetime
    total: int = Field(description="Runs created in the window.")
    by_status: dict[str, int]
    by_type: list[TypeCounts] = Field(description="The registered types.")
    other_types: int = Field(description="Runs of types the registry no longer lists.")


class ThroughputBucket(BaseModel):
    start: datetime
    end: datetime
    created: int
    completed: int
    failed: int


class Throughput(BaseModel):
    hours: float
    bucket_minutes: int
    since: datetime
    until: datetime
    basis: str = Field(
        default="created_at",
        description="Runs are counted in the bucket of their creation, with their current status.",
    )
    created: int
    completed: int
    failed: int
    completed_per_minute: float
    buckets: list[ThroughputBucket]
