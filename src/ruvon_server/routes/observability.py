"""A run's records (API-11): ``/workflow/{id}/logs``, ``/metrics`` and ``/audit``, oldest
first, read from the store as the CLI reads them (every backend)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query

from ruvon_server.deps import StoreDep, WorkflowIdDep, load_record
from ruvon_server.errors import ERROR_RESPONSES
from ruvon_server.inputs import check_text
from ruvon_server.schemas.observability import AuditEntry, LogLine, MetricPointModel
from ruvon_server.views import audit_entry, log_line, metric_point

__all__ = ["router"]

router = APIRouter(tags=["observability"], responses=ERROR_RESPONSES)


class LogLevel(str, Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@router.get("/workflow/{workflow_id}/logs", response_model=list[LogLine])
async def workflow_logs(
    store: StoreDep,
    workflow_id: WorkflowIdDep,
    step: Annotated[
        str | None,
        Query(description="Only this step's lines (alias step_name)."),
    ] = None,
    step_name: Annotated[str | None, Query(include_in_schema=False)] = None,
    level: Annotated[
        LogLevel | None, Query(description="Only this level (alias log_level).")
    ] = None,
    log_level: Annotated[LogLevel | None, Query(include_in_schema=False)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[LogLine]:
    """The run's execution log: each step's line (from its audit entry) and what the steps
    logged, oldest first."""
    await load_record(store, workflow_id)
    wanted_level = level or log_level
    entries = await store.get_execution_logs(
        workflow_id,
        step_name=check_text(step or step_name, "step"),
        level=wanted_level.value if wanted_level is not None else None,
        limit=limit,
    )
    return [log_line(entry) for entry in entries]


@router.get("/workflow/{workflow_id}/metrics", response_model=list[MetricPointModel])
async def workflow_metrics(
    store: StoreDep,
    workflow_id: WorkflowIdDep,
    metric_name: Annotated[str | None, Query(description="Only this metric.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[MetricPointModel]:
    """The run's metric points (``step_duration_ms`` per step, and the steps' own)."""
    await load_record(store, workflow_id)
    points = await store.get_workflow_metrics(
        workflow_id=workflow_id, metric_name=check_text(metric_name, "metric_name"), limit=limit
    )
    return [metric_point(point) for point in points]


@router.get("/workflow/{workflow_id}/audit", response_model=list[AuditEntry])
async def workflow_audit(
    store: StoreDep,
    workflow_id: WorkflowIdDep,
    event_type: Annotated[str | None, Query(description="Only this event type.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AuditEntry]:
    """The run's audit trail: every step, status change and who asked for it (``user_id``)."""
    await load_record(store, workflow_id)
    events = await store.get_audit_log(
        workflow_id, event_type=check_text(event_type, "event_type"), limit=limit
    )
    return [audit_entry(event) for event in events]
