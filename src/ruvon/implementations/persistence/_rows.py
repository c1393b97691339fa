"""Row ⇄ record mapping shared by the SQL providers.

Records become statement parameters (JSON as text, times through the dialect) and selected rows
become records again. The workflow row is mapped by its column declaration (``_columns``): which
values each dialect converts, and where, is derived from it once at import. The entry rows are
read by position, in the column order of the statements in ``_sql`` and ``_queries``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

from ruvon.implementations.persistence._columns import (
    INSERT_COLUMNS,
    UPDATED_COLUMNS,
    WORKFLOW_COLUMNS,
    Column,
)
from ruvon.implementations.persistence._sql import (
    POSTGRES,
    SQLITE,
    Dialect,
    json_text,
    utc_or_none,
)
from ruvon.providers.persistence import (
    AuditEvent,
    Heartbeat,
    LogEntry,
    MetricPoint,
    TaskRecord,
    WorkflowCommit,
    WorkflowRecord,
)
from ruvon.providers.records import new_commit_token
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


# -- the workflow row, mapped by its column declaration -----------------------------------

Convert = Callable[[Any], Any]
Conversions = tuple[tuple[int, Convert], ...]
"""``(position, function)`` for every value that a dialect converts on its way."""


def _conversions(columns: Sequence[Column], by_kind: dict[str, Convert], first: int) -> Conversions:
    return tuple(
        (position, by_kind[column.kind])
        for position, column in enumerate(columns, first)
        if column.kind in by_kind
    )


@dataclass(frozen=True, slots=True)
class _WorkflowCodec:
    """How one dialect converts the values of a workflow row, derived from ``_columns``."""

    insert: Conversions
    """The parameters of the INSERT (:data:`~._columns.INSERT_COLUMNS`)."""
    update: Conversions
    """The parameters of the UPDATE: id, expected version, then the updated columns."""
    select: Conversions
    """A selected row (:data:`~._columns.WORKFLOW_COLUMNS`)."""

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _WorkflowCodec:
        write: dict[str, Convert] = {"json": json_text, "time": dialect.time_out, "bool": bool}
        read: dict[str, Convert] = {"json": dialect.json_in, "time": dialect.time_in, "bool": bool}
        return cls(
            insert=_conversions(INSERT_COLUMNS, write, 0),
            update=_conversions(UPDATED_COLUMNS, write, 2),
            select=_conversions(WORKFLOW_COLUMNS, read, 0),
        )


_CODECS: dict[str, _WorkflowCodec] = {
    dialect.name: _WorkflowCodec.for_dialect(dialect) for dialect in (SQLITE, POSTGRES)
}
_INSERT_VALUES = attrgetter(*(column.name for column in INSERT_COLUMNS))
_UPDATE_VALUES = attrgetter(*(column.name for column in UPDATED_COLUMNS))
_INSERT_JSON = tuple(
    (column.name, position)
    for position, column in enumerate(INSERT_COLUMNS)
    if column.kind == "json"
)
_INSERT_TIMES = tuple(
    column.name for column in INSERT_COLUMNS if column.kind == "time" and column.default is None
)


def insert_workflow_args(record: WorkflowRecord, dialect: Dialect) -> list[Any]:
    """The parameters of ``Statements.insert_workflow`` for ``record``: the fields of
    :data:`~._columns.INSERT_COLUMNS`, in order, as ``dialect`` passes them."""
    args = list(_INSERT_VALUES(record))
    for position, convert in _CODECS[dialect.name].insert:
        args[position] = convert(args[position])
    return args


def created_record(
    record: WorkflowRecord, args: Sequence[Any], created_at: datetime, updated_at: datetime
) -> WorkflowRecord:
    """What ``create_workflow`` stored, built from the insert's ``args`` without reading back.

    JSON values are parsed from the text that was written, which both copies them and gives
    exactly what a later load returns; times are in UTC.
    """
    changes: dict[str, Any] = {name: loads(args[position]) for name, position in _INSERT_JSON}
    for name in _INSERT_TIMES:
        changes[name] = utc_or_none(getattr(record, name))
    return replace(record, **changes, version=1, created_at=created_at, updated_at=updated_at)


COMMIT_TOKEN_ARG = 2 + [column.name for column in UPDATED_COLUMNS].index("commit_token")
"""Where the commit token is in :func:`update_workflow_args`."""


def update_workflow_args(commit: WorkflowCommit, dialect: Dialect) -> list[Any]:
    """The parameters of :data:`~._columns.UPDATE_WORKFLOW` for ``commit``: the workflow id,
    the expected version, the update's fields of :data:`~._columns.UPDATED_COLUMNS` (with a
    fresh commit token if the update has none), then the lease holder."""
    update = commit.update
    args = [update.workflow_id, commit.expected_version, *_UPDATE_VALUES(update)]
    for position, convert in _CODECS[dialect.name].update:
        args[position] = convert(args[position])
    if args[COMMIT_TOKEN_ARG] is None:
        args[COMMIT_TOKEN_ARG] = new_commit_token()
    args.append(commit.lease_holder)
    return args


def workflow_from_row(row: Sequence[Any], dialect: Dialect) -> WorkflowRecord:
    """A row selected with :data:`~._columns.SELECT_WORKFLOW` → record.

    The row holds the record's fields in order (``_columns`` checks its declaration against
    the record at import), so the converted values are the record's arguments.
    """
    values = list(row)
    for position, convert in _CODECS[dialect.name].select:
        values[position] = convert(values[position])
    return WorkflowRecord(*values)


# -- entries to parameters -----------------------------------------------------------------


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
