"""Cron schedules that start workflows (docs/schedules.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ScheduleList", "ScheduleModel", "ScheduleRequest"]


class ScheduleRequest(BaseModel):
    """Create or replace (by name) a schedule."""

    model_config = ConfigDict(extra="forbid")

    schedule_name: str = Field(min_length=1, max_length=200, examples=["nightly-report"])
    workflow_type: str = Field(min_length=1, max_length=200)
    cron_expression: str = Field(
        min_length=1, max_length=200, description="croniter syntax, evaluated in UTC."
    )
    initial_data: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the type's state model."
    )
    enabled: bool = True


class ScheduleModel(BaseModel):
    schedule_name: str
    workflow_type: str
    cron_expression: str
    initial_data: dict[str, Any]
    enabled: bool
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    run_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ScheduleList(BaseModel):
    schedules: list[ScheduleModel]
