"""What the SQLite and PostgreSQL providers share: dialects, statements, filters, errors.

Statements are written once, in PostgreSQL syntax (``$n`` parameters, ``::type`` casts on
parameters, ``now()``). :func:`to_sqlite` turns them into SQLite text mechanically: ``$n::type``
becomes the numbered parameter ``?n``, and the SQLite provider registers a ``now()`` function
that returns the operation's timestamp. The few things that genuinely differ (value encodings,
how the insertion sequence and a staleness cutoff are written) are the fields of
:class:`Dialect`. The workflow row's statements are generated from its column declaration in
``_columns``, the filtered reads are in ``_queries``, row ⇄ record mapping is in ``_rows``; the
contract methods that are the same on both dialects are in ``_provider``.

Conventions both dialects follow: every timestamp is UTC; JSON is written as text by
:func:`ruvon.serialization.dumps`; an entry written for a workflow is an ``INSERT ... SELECT
... FROM workflow_executions WHERE id = $1``, so "no row inserted" means "no such workflow".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from enum import Enum
from functools import lru_cache
from typing import Any, Literal

from ruvon.errors import DuplicateIdempotencyKeyError, PersistenceError
from ruvon.implementations.persistence._columns import (
    INSERT_WORKFLOW,
    SELECT_WORKFLOW,
    UPDATE_WORKFLOW,
)
from ruvon.providers.persistence import TaskRecord, WorkflowRecord
from ruvon.serialization import loads, serialize

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_INSERT",
    "LOG_COLUMNS",
    "LOG_INSERT",
    "METRIC_COLUMNS",
    "METRIC_INSERT",
    "POSTGRES",
    "SQLITE",
    "TASK_COLUMNS",
    "Dialect",
    "Statements",
    "Violation",
    "classify_violation",
    "create_conflict",
    "describe",
    "json_text",
    "to_sqlite",
    "to_utc",
    "utc_or_none",
]

# -- dialects ------------------------------------------------------------------------------


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    # Fixed width (always microseconds, always +00:00) so that text order is time order.
    return None if moment is None else to_utc(moment).isoformat(timespec="microseconds")


def _parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _load_json(text: str | None) -> Any:
    return None if text is None else loads(text)


def _same(value: Any) -> Any:
    return value


def utc_or_none(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (see :func:`to_utc`), or ``None``."""
    return None if moment is None else to_utc(moment)


def _seconds_ago_iso(seconds: float) -> str | None:
    return _iso(datetime.now(timezone.utc) - timedelta(seconds=seconds))


def _seconds_later_iso(seconds: float) -> str | None:
    return _iso(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def json_text(value: Any) -> str | None:
    """``value`` as JSON text, or ``None`` for SQL NULL."""
    return None if value is None else serialize(value)


_PARAMETER = re.compile(r"\$(\d+)(?:::[a-z0-9_]+(?:\[\])?)?")


@lru_cache(maxsize=512)
def to_sqlite(sql: str) -> str:
    """PostgreSQL statement text to SQLite: ``$3::jsonb`` → ``?3``."""
    return _PARAMETER.sub(r"?\1", sql)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one SQL database differs from the other, as far as the shared code cares."""

    name: Literal["sqlite", "postgres"]
    sql: Callable[[str], str]
    """Statement text written in PostgreSQL syntax → this dialect's text."""
    json_in: Callable[[Any], Any]
    """A JSON column's value as read → Python (PostgreSQL decodes it in a type codec)."""
    time_in: Callable[[Any], datetime | None]
    time_out: Callable[[datetime | None], Any]
    next_seq: str
    """The value of ``workflow_executions.seq`` in an INSERT."""
    stale_cutoff: str
    """The time before which a heartbeat (or a task's claim) is stale, in terms of parameter
    ``$1``..."""
    stale_arg: Callable[[float], Any]
    """... computed from the staleness threshold in seconds."""
    claim_lock: str
    """What makes the task claim's inner SELECT skip the rows other claimers hold."""
    lease_until: str
    """The end of a lease, in terms of the parameter ``{p}``..."""
    lease_arg: Callable[[float], Any]
    """... computed from the lease's length in seconds."""


SQLITE = Dialect(
    name="sqlite",
    sql=to_sqlite,
    json_in=_load_json,
    time_in=_parse_iso,
    time_out=_iso,
    # The writer holds the database's write lock, so MAX + 1 cannot race; the unique index on
    # seq makes it a single index probe.
    next_seq="(SELECT COALESCE(MAX(seq), 0) + 1 FROM workflow_executions)",
    # SQLite has no arithmetic on our timestamp text: the cutoff is computed in Python.
    stale_cutoff="$1",
    stale_arg=_seconds_ago_iso,
    # The claim runs in BEGIN IMMEDIATE: the write lock already keeps other claimers out.
    claim_lock="",
    # The writing process's clock is the database's clock (no server).
    lease_until="{p}",
    lease_arg=_seconds_later_iso,
)

POSTGRES = Dialect(
    name="postgres",
    sql=_same,
    json_in=_same,
    time_in=_same,
    time_out=utc_or_none,
    next_seq="DEFAULT",
    # The database clock, not the workers' clocks, decides staleness.
    stale_cutoff="now() - make_interval(secs => $1::float8)",
    stale_arg=float,
    # Concurrent claimers each lock a different PENDING row instead of waiting for one.
    claim_lock=" FOR UPDATE SKIP LOCKED",
    lease_until="now() + make_interval(secs => {p}::float8)",
    lease_arg=float,
)


# -- statements ----------------------------------------------------------------------------

AUDIT_COLUMNS = (
    "event_type",
    "step_name",
    "old_status",
    "new_status",
    "event_data",
    "user_id",
    "worker_id",
    "execution_duration_ms",
)
METRIC_COLUMNS = ("workflow_type", "step_name", "metric_name", "metric_value", "unit", "tags")
LOG_COLUMNS = ("step_name", "log_level", "message", "metadata")
AUDIT_INSERT = f"workflow_audit_log (workflow_id, {', '.join(AUDIT_COLUMNS)}, timestamp)"
METRIC_INSERT = f"workflow_metrics (workflow_id, {', '.join(METRIC_COLUMNS)}, recorded_at)"
LOG_INSERT = f"workflow_execution_logs (workflow_id, {', '.join(LOG_COLUMNS)}, logged_at)"
"""The targets of the entry inserts: the shared columns, plus the row's time, set to now()."""

_INSERT_AUDIT = f"""INSERT INTO {AUDIT_INSERT}
SELECT id, $2::text, $3::text, $4::text, $5::text, $6::jsonb, $7::text, $8::text, $9::float8,
       now()
FROM workflow_executions WHERE id = $1"""

_INSERT_METRIC = f"""INSERT INTO {METRIC_INSERT}
SELECT id, COALESCE($2::text, workflow_type), $3::text, $4::text, $5::float8, $6::text,
       $7::jsonb, now()
FROM workflow_executions WHERE id = $1"""

_INSERT_LOG = f"""INSERT INTO {LOG_INSERT}
SELECT id, $2::text, $3::text, $4::text, $5::jsonb, now()
FROM workflow_executions WHERE id = $1"""

_UPSERT_HEARTBEAT = """INSERT INTO workflow_heartbeats
    (workflow_id, worker_id, current_step, last_heartbeat, metadata)
SELECT id, $2::text, $3::text, now(), $4::jsonb FROM workflow_executions WHERE id = $1
ON CONFLICT (workflow_id) DO UPDATE SET worker_id = excluded.worker_id,
    current_step = excluded.current_step, last_heartbeat = excluded.last_heartbeat,
    metadata = excluded.metadata"""

_STALE_HEARTBEATS = """SELECT workflow_id, worker_id, current_step, last_heartbeat, metadata
FROM workflow_heartbeats WHERE last_heartbeat < {cutoff}
ORDER BY last_heartbeat, workflow_id"""

# The columns of tasks are named like the fields of TaskRecord, in order.
TASK_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(TaskRecord))
"""The columns read into a :class:`TaskRecord`, in its field order."""

_SELECT_TASK = f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks"
_RETURNING_TASK = f"RETURNING {', '.join(TASK_COLUMNS)}"

_INSERT_TASK = """INSERT INTO tasks (task_id, execution_id, step_name, step_index, status,
    max_retries, task_data, idempotency_key, created_at, updated_at)
SELECT $2::text, id, $3::text, $4::int4, 'PENDING', $5::int4, $6::jsonb, $7::text, now(), now()
FROM workflow_executions WHERE id = $1
ON CONFLICT (idempotency_key) DO NOTHING"""
"""Queue a task for workflow ``$1`` unless its idempotency key ``$7`` is taken."""

_CLAIM_TASK = f"""UPDATE tasks
SET status = 'CLAIMED', worker_id = $1::text, claimed_at = now(), updated_at = now()
WHERE task_id = (
    SELECT task_id FROM tasks
    WHERE status = 'PENDING' AND ($2::text IS NULL OR step_name = $2::text)
    ORDER BY created_at, task_id LIMIT 1{{lock}})
{_RETURNING_TASK}"""
"""Take the oldest PENDING task (of step ``$2`` unless NULL) for worker ``$1``."""

_CLAIM_TASK_BY_ID = f"""UPDATE tasks
SET status = 'RUNNING', worker_id = $3::text,
    claimed_at = CASE WHEN status <> 'PENDING' AND worker_id = $3::text
                      THEN COALESCE(claimed_at, now()) ELSE now() END,
    started_at = COALESCE(started_at, now()),
    updated_at = now()
WHERE task_id = $2 AND (status = 'PENDING' OR (status IN ('CLAIMED', 'RUNNING')
    AND (worker_id = $3::text OR updated_at < {{cutoff}})))
{_RETURNING_TASK}"""
"""Take task ``$2`` for worker ``$3``: a PENDING task, one ``$3`` holds already (a renewal,
which keeps ``claimed_at``), or one whose holder last renewed it before the staleness cutoff
(computed from ``$1``, the threshold in seconds). The right-hand sides read the row as it was.
"""

_UPDATE_TASK = f"""UPDATE tasks
SET status = $2::text,
    started_at = CASE WHEN $2::text = 'RUNNING' THEN now() ELSE started_at END,
    completed_at = CASE WHEN $2::text IN ('COMPLETED', 'FAILED') THEN now() ELSE completed_at END,
    retry_count = retry_count + CASE WHEN $2::text = 'FAILED' THEN 1 ELSE 0 END,
    result = COALESCE($3::jsonb, result),
    last_error = COALESCE($4::text, last_error),
    updated_at = now()
WHERE task_id = $1
{_RETURNING_TASK}"""


@dataclass(frozen=True, slots=True)
class Statements:
    """The fixed statements, rendered for one dialect."""

    insert_workflow: str
    select_workflow: str
    select_workflow_by_key: str
    workflow_version: str
    update_workflow: str
    delete_workflow: str
    insert_audit: str
    insert_metric: str
    insert_log: str
    upsert_heartbeat: str
    delete_heartbeat: str
    stale_heartbeats: str
    insert_task: str
    select_task: str
    select_task_by_key: str
    claim_task: str
    claim_task_by_id: str
    update_task: str

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> Statements:
        """Render every statement for ``dialect``."""
        sql = dialect.sql
        return cls(
            insert_workflow=sql(INSERT_WORKFLOW.replace("{seq}", dialect.next_seq)),
            select_workflow=sql(f"{SELECT_WORKFLOW} WHERE id = $1"),
            select_workflow_by_key=sql(f"{SELECT_WORKFLOW} WHERE idempotency_key = $1"),
            workflow_version=sql("SELECT version FROM workflow_executions WHERE id = $1"),
            update_workflow=sql(UPDATE_WORKFLOW),
            delete_workflow=sql("DELETE FROM workflow_executions WHERE id = $1"),
            insert_audit=sql(_INSERT_AUDIT),
            insert_metric=sql(_INSERT_METRIC),
            insert_log=sql(_INSERT_LOG),
            upsert_heartbeat=sql(_UPSERT_HEARTBEAT),
            delete_heartbeat=sql("DELETE FROM workflow_heartbeats WHERE workflow_id = $1"),
            stale_heartbeats=sql(_STALE_HEARTBEATS.format(cutoff=dialect.stale_cutoff)),
            insert_task=sql(_INSERT_TASK),
            select_task=sql(f"{_SELECT_TASK} WHERE task_id = $1"),
            select_task_by_key=sql(f"{_SELECT_TASK} WHERE idempotency_key = $1"),
            claim_task=sql(_CLAIM_TASK.replace("{lock}", dialect.claim_lock)),
            claim_task_by_id=sql(_CLAIM_TASK_BY_ID.format(cutoff=dialect.stale_cutoff)),
            update_task=sql(_UPDATE_TASK),
        )


# -- driver errors -------------------------------------------------------------------------


class Violation(Enum):
    """Which integrity rule a driver error reports."""

    DUPLICATE_ID = "duplicate id"
    DUPLICATE_IDEMPOTENCY_KEY = "duplicate idempotency key"
    MISSING_REFERENCE = "missing referenced row"
    OTHER = "other"


def classify_violation(detail: str) -> Violation:
    """Classify an integrity error from its text (SQLite message or PostgreSQL constraint).

    SQLite says ``UNIQUE constraint failed: workflow_executions.idempotency_key`` or
    ``FOREIGN KEY constraint failed``; PostgreSQL names the constraint
    (``workflow_executions_pkey``, ``..._idempotency_key_key``, ``..._fkey``).
    """
    if "idempotency_key" in detail:
        return Violation.DUPLICATE_IDEMPOTENCY_KEY
    if "workflow_executions_pkey" in detail or "workflow_executions.id" in detail:
        return Violation.DUPLICATE_ID
    if "FOREIGN KEY" in detail.upper() or detail.endswith("_fkey"):
        return Violation.MISSING_REFERENCE
    return Violation.OTHER


def create_conflict(record: WorkflowRecord, detail: str) -> PersistenceError:
    """The error for an insert of ``record`` that broke an integrity rule."""
    kind = classify_violation(detail)
    if kind is Violation.DUPLICATE_ID:
        return PersistenceError(f"Workflow '{record.id}' already exists.")
    if kind is Violation.DUPLICATE_IDEMPOTENCY_KEY and record.idempotency_key is not None:
        return DuplicateIdempotencyKeyError(record.idempotency_key)
    if kind is Violation.MISSING_REFERENCE:
        return PersistenceError(
            f"Cannot create workflow '{record.id}': its parent workflow "
            f"'{record.parent_execution_id}' does not exist."
        )
    return PersistenceError(f"Cannot create workflow '{record.id}': {detail}")


def describe(exc: BaseException) -> str:
    """A driver error as ``Type: message`` for our messages (the driver type stays inside)."""
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"
