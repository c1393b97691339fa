"""Row ⇄ record mapping shared by the SQL providers.

Records become statement parameters (JSON as text, times through the dialect) and selected rows
become records again. Rows are read by position, in the column order of the statements in
``_sql``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ruvon.implementations.persistence._sql import Dialect, json_text, utc_or_none
from ruvon.providers.persistence import (
    AuditEvent,
    Heartbeat,
    LogEntry,
    MetricPoint,
    TaskRecord,
    WorkflowRecord,
    WorkflowUpdate,
)
from ruvon.serialization import loads

__all__ = [
    "audit_from_row",
    "audit_rows",
    "created_record",
    "heartbeat_from_row",
    "insert_workflow_args",
    "log_from_row",
    "log_rows",
    "metric_from_row",
    "metric_rows",
    "task_from_row",
    "update_workflow_args",
    "workflow_from_row",
]


# -- records to parameters ---------------------------------------------------------------


def insert_workflow_args(record: WorkflowRecord, dialect: Dialect) -> list[Any]:
    """The parameters of ``Statements.insert_workflow`` for ``record``: every column of
    :data:`~._sql.WORKFLOW_COLUMNS` in order, except ``version`` and ``updated_at``."""
    time_out = dialect.time_out
    return [
        record.id,
        record.workflow_type,
        record.workflow_version,
        json_text(record.definition_snapshot),
        record.state_model_path,
        record.status,
        json_text(record.state),
        record.current_step,
        record.current_step_index,
        json_text(record.metadata),
        json_text(record.completed_steps_stack),
        bool(record.saga_mode),
        record.parent_execution_id,
        record.blocked_on_child_id,
        record.owner_id,
        record.org_id,
        record.data_region,
        record.priority,
        record.idempotency_key,
        record.idempotency_hash,
        record.error_message,
        time_out(record.created_at),
        time_out(record.completed_at),
    ]


def created_record(
    record: WorkflowRecord, args: Sequence[Any], created_at: datetime, updated_at: datetime
) -> WorkflowRecord:
    """What ``create_workflow`` stored, built from the insert's ``args`` without reading back.

    JSON values are parsed from the text that was written, which both copies them and gives
    exactly what a later load returns.
    """
    return replace(
        record,
        definition_snapshot=loads(args[3]),
        state=loads(args[6]),
        metadata=loads(args[9]),
        completed_steps_stack=loads(args[10]),
        version=1,
        created_at=created_at,
        updated_at=updated_at,
        completed_at=utc_or_none(record.completed_at),
    )


def update_workflow_args(
    update: WorkflowUpdate, expected_version: int, dialect: Dialect
) -> list[Any]:
    """The 12 parameters of :data:`~._sql.UPDATE_WORKFLOW`."""
    return [
        update.workflow_id,
        expected_version,
        update.status,
        json_text(update.state),
        update.current_step,
        update.current_step_index,
        json_text(update.metadata),
        json_text(update.completed_steps_stack),
        bool(update.saga_mode),
        update.blocked_on_child_id,
        update.error_message,
        dialect.time_out(update.completed_at),
    ]


def audit_rows(workflow_id: str, events: Sequence[AuditEvent]) -> list[tuple[Any, ...]]:
    """Parameters of ``Statements.insert_audit``, one tuple per event."""
    return [
        (
            workflow_id,
            event.event_type,
            event.step_name,
            event.old_status,
            event.new_status,
            json_text(event.data),
            event.user_id,
            event.worker_id,
            None if event.duration_ms is None else float(event.duration_ms),
        )
        for event in events
    ]


def metric_rows(workflow_id: str, points: Sequence[MetricPoint]) -> list[tuple[Any, ...]]:
    """Parameters of ``Statements.insert_metric``, one tuple per point."""
    return [
        (
            workflow_id,
            point.workflow_type,
            point.step_name,
            point.metric_name,
            float(point.metric_value),
            point.unit,
            json_text(point.tags),
        )
        for point in points
    ]


def log_rows(workflow_id: str, entries: Sequence[LogEntry]) -> list[tuple[Any, ...]]:
    """Parameters of ``Statements.insert_log``, one tuple per entry."""
    return [
        (
            workflow_id,
            entry.step_name,
            entry.level.upper(),
            entry.message,
            json_text(entry.metadata),
        )
        for entry in entries
    ]


# -- rows to records ---------------------------------------------------------------------


def workflow_from_row(row: Sequence[Any], dialect: Dialect) -> WorkflowRecord:
    """A row selected with :data:`WORKFLOW_COLUMNS` → record."""
    json_in, time_in = dialect.json_in, dialect.time_in
    return WorkflowRecord(
        id=row[0],
        workflow_type=row[1],
        workflow_version=row[2],
        definition_snapshot=json_in(row[3]),
        state_model_path=row[4],
        status=row[5],
        state=json_in(row[6]),
        current_step=row[7],
        current_step_index=row[8],
        metadata=json_in(row[9]),
        completed_steps_stack=json_in(row[10]),
        saga_mode=bool(row[11]),
        parent_execution_id=row[12],
        blocked_on_child_id=row[13],
        owner_id=row[14],
        org_id=row[15],
        data_region=row[16],
        priority=row[17],
        idempotency_key=row[18],
        idempotency_hash=row[19],
        error_message=row[20],
        version=row[21],
        created_at=time_in(row[22]),
        updated_at=time_in(row[23]),
        completed_at=time_in(row[24]),
    )


def audit_from_row(row: Sequence[Any], dialect: Dialect) -> AuditEvent:
    """A row of :func:`~._queries.audit_query` → event."""
    return AuditEvent(
        id=row[0],
        workflow_id=row[1],
        event_type=row[2],
        step_name=row[3],
        old_status=row[4],
        new_status=row[5],
        data=dialect.json_in(row[6]),
        user_id=row[7],
        worker_id=row[8],
        duration_ms=row[9],
        timestamp=dialect.time_in(row[10]),
    )


def metric_from_row(row: Sequence[Any], dialect: Dialect) -> MetricPoint:
    """A row of :func:`~._queries.metrics_query` → point."""
    return MetricPoint(
        id=row[0],
        workflow_id=row[1],
        workflow_type=row[2],
        step_name=row[3],
        metric_name=row[4],
        metric_value=row[5],
        unit=row[6],
        tags=dialect.json_in(row[7]),
        recorded_at=dialect.time_in(row[8]),
    )


def log_from_row(row: Sequence[Any], dialect: Dialect) -> LogEntry:
    """A row of :func:`~._queries.logs_query` → entry."""
    return LogEntry(
        id=row[0],
        workflow_id=row[1],
        step_name=row[2],
        level=row[3],
        message=row[4],
        metadata=dialect.json_in(row[5]),
        logged_at=dialect.time_in(row[6]),
    )


def heartbeat_from_row(row: Sequence[Any], dialect: Dialect) -> Heartbeat:
    """A row of ``Statements.stale_heartbeats`` → heartbeat."""
    last = dialect.time_in(row[3])
    assert last is not None  # the column is NOT NULL
    return Heartbeat(
        workflow_id=row[0],
        worker_id=row[1],
        current_step=row[2],
        last_heartbeat=last,
        metadata=dialect.json_in(row[4]),
    )


def task_from_row(row: Sequence[Any], dialect: Dialect) -> TaskRecord:
    """A row selected with :data:`~._sql.TASK_COLUMNS` → task."""
    json_in, time_in = dialect.json_in, dialect.time_in
    task_data = json_in(row[12])
    return TaskRecord(
        task_id=row[0],
        execution_id=row[1],
        step_name=row[2],
        step_index=row[3],
        status=row[4],
        worker_id=row[5],
        claimed_at=time_in(row[6]),
        started_at=time_in(row[7]),
        completed_at=time_in(row[8]),
        retry_count=row[9],
        max_retries=row[10],
        last_error=row[11],
        task_data={} if task_data is None else task_data,
        result=json_in(row[13]),
        idempotency_key=row[14],
        created_at=time_in(row[15]),
        updated_at=time_in(row[16]),
    )
