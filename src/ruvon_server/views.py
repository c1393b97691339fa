"""Stored runs (:class:`~ruvon.providers.persistence.WorkflowRecord`) and store entries as the
API's response models. Reads use the record as stored: nothing is compiled or imported to show
a run."""

from __future__ import annotations

from typing import Any

from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    ScheduleRecord,
    WorkflowRecord,
)
from ruvon.serialization import jsonable
from ruvon_server.schemas.observability import AuditEntry, LogLine, MetricPointModel
from ruvon_server.schemas.schedules import ScheduleModel
from ruvon_server.schemas.workflows import WorkflowDetail, WorkflowSummary

__all__ = ["audit_entry", "detail", "log_line", "metric_point", "schedule", "summary"]


def _dict(value: Any) -> dict[str, Any]:
    converted = jsonable(value)
    return converted if isinstance(converted, dict) else {"value": converted}


def summary(record: WorkflowRecord, *, with_state: bool = False) -> WorkflowSummary:
    return WorkflowSummary(
        workflow_id=record.id,
        workflow_type=record.workflow_type,
        workflow_version=record.workflow_version,
        status=record.status,
        current_step=record.current_step,
        owner_id=record.owner_id,
        org_id=record.org_id,
        parent_execution_id=record.parent_execution_id,
        error_message=record.error_message,
        created_at=record.created_at,
        updated_at=record.updated_at,
        completed_at=record.completed_at,
        state=_dict(record.state) if with_state else None,
    )


def detail(record: WorkflowRecord, child_ids: list[str]) -> WorkflowDetail:
    return WorkflowDetail(
        workflow_id=record.id,
        workflow_type=record.workflow_type,
        workflow_version=record.workflow_version,
        status=record.status,
        current_step=record.current_step,
        current_step_index=record.current_step_index,
        state=_dict(record.state),
        metadata=_dict(record.metadata),
        saga_mode=record.saga_mode,
        owner_id=record.owner_id,
        org_id=record.org_id,
        data_region=record.data_region,
        priority=record.priority,
        idempotency_key=record.idempotency_key,
        error_message=record.error_message,
        parent_execution_id=record.parent_execution_id,
        blocked_on_child_id=record.blocked_on_child_id,
        child_ids=child_ids,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
        completed_at=record.completed_at,
    )


def audit_entry(event: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=event.id,
        workflow_id=event.workflow_id,
        event_type=event.event_type,
        step_name=event.step_name,
        old_status=event.old_status,
        new_status=event.new_status,
        data=_dict(event.data) if event.data is not None else None,
        user_id=event.user_id,
        worker_id=event.worker_id,
        duration_ms=event.duration_ms,
        timestamp=event.timestamp,
    )


def log_line(entry: LogEntry) -> LogLine:
    return LogLine(
        id=entry.id,
        workflow_id=entry.workflow_id,
        level=entry.level,
        message=entry.message,
        step_name=entry.step_name,
        metadata=_dict(entry.metadata) if entry.metadata is not None else None,
        logged_at=entry.logged_at,
    )


def metric_point(point: MetricPoint) -> MetricPointModel:
    return MetricPointModel(
        id=point.id,
        workflow_id=point.workflow_id,
        workflow_type=point.workflow_type,
        metric_name=point.metric_name,
        metric_value=point.metric_value,
        unit=point.unit,
        step_name=point.step_name,
        tags=_dict(point.tags) if point.tags is not None else None,
        recorded_at=point.recorded_at,
    )


def schedule(record: ScheduleRecord) -> ScheduleModel:
    return ScheduleModel(
        schedule_name=record.schedule_name,
        workflow_type=record.workflow_type,
        cron_expression=record.cron_expression,
        initial_data=_dict(record.initial_data),
        enabled=record.enabled,
        next_run_at=record.next_run_at,
        last_run_at=record.last_run_at,
        run_count=record.run_count,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
