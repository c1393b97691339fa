"""The persistence contract: what every store (memory, SQLite, PostgreSQL, yours) provides.

The contract is a set of small Protocols (structural typing: a provider need not import Ruvon to
satisfy them). :class:`PersistenceProvider` is their union, which is what the engine needs; the
cron schedules' part, :class:`ScheduleStore`, is in :mod:`ruvon.providers.schedules`, the
crash recovery's conditional writes, :class:`RecoveryStore`, in :mod:`ruvon.providers.recovery`.
The records below are the vocabulary of the contract; they are plain frozen data.

Every JSON value (state, metadata, saga stack, progress, definition snapshot, audit data, log
metadata, metric tags, heartbeat metadata, task data and results) goes through the one codec,
:func:`ruvon.serialization.dumps` when written and :func:`~ruvon.serialization.loads` when read,
in every store. So values are returned JSON-normalized (tuples come back as lists, datetimes
inside JSON as ISO strings; metric values are floats), and a value the codec cannot serialize is
rejected by every store alike: the codec's ``TypeError`` propagates unchanged (it is not wrapped
in :class:`PersistenceError`) and nothing of the call is written.

The one rule every implementation must keep: :meth:`WorkflowStore.commit_workflow` writes the
workflow row *and* the audit, metric, log and compensation-log entries that come with it (one
:class:`WorkflowCommit`) in one transaction, and only if the row's version is still the expected
one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ruvon.errors import (
    ConcurrencyConflictError,
    DuplicateIdempotencyKeyError,
    PersistenceError,
    TaskNotFoundError,
    WorkflowNotFoundError,
)
from ruvon.providers.compensation import (
    COMPENSATE,
    COMPENSATE_FAILED,
    CompensationEntry,
    CompensationLog,
    check_compensation_action,
)
from ruvon.providers.leases import LeaseGrant, LeaseStore
from ruvon.providers.records import (
    TASK_STATUSES,
    AuditEvent,
    Heartbeat,
    LogEntry,
    MetricPoint,
    ScheduleRecord,
    TaskRecord,
    WorkflowCommit,
    WorkflowRecord,
    WorkflowUpdate,
    check_aware,
    check_page,
    check_task_status,
)
from ruvon.providers.recovery import RecoveryStore
from ruvon.providers.schedules import ScheduleStore

__all__ = [
    "COMPENSATE",
    "COMPENSATE_FAILED",
    "TASK_STATUSES",
    "AuditEvent",
    "AuditLog",
    "CompensationEntry",
    "CompensationLog",
    "ConcurrencyConflictError",
    "DuplicateIdempotencyKeyError",
    "Heartbeat",
    "HeartbeatStore",
    "LeaseGrant",
    "LeaseStore",
    "LogEntry",
    "MetricPoint",
    "PersistenceError",
    "PersistenceProvider",
    "RecoveryStore",
    "ScheduleRecord",
    "ScheduleStore",
    "TaskNotFoundError",
    "TaskQueue",
    "TaskRecord",
    "WorkflowCommit",
    "WorkflowNotFoundError",
    "WorkflowRecord",
    "WorkflowStore",
    "WorkflowUpdate",
    "check_aware",
    "check_compensation_action",
    "check_page",
    "check_task_status",
]


@runtime_checkable
class WorkflowStore(Protocol):
    """Workflow rows: create, load, commit (versioned), list, delete."""

    async def initialize(self) -> None:
        """Connect and bring the schema up to date. Idempotent."""
        ...

    async def close(self) -> None:
        """Release connections. The provider may be initialized again afterwards."""
        ...

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one transaction and return what is stored.

        Every field of ``record`` is stored as given (``progress`` included) except ``version``
        (1) and the times the store sets (``updated_at``; ``created_at`` unless given). If
        ``record.idempotency_key`` is already held by another workflow, nothing is written and
        that workflow's record is returned instead (with its own ``idempotency_hash``: the
        caller compares). A JSON value the codec cannot serialize raises its ``TypeError``.
        """
        ...

    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The stored workflow, or ``None`` if there is none with this id."""
        ...

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        """Write ``commit.update`` and the commit's audit, metric, log and compensation-log
        entries in one transaction; return the new row version (``expected_version + 1``).

        Raises :class:`ConcurrencyConflictError` (writing nothing) if the stored version is not
        ``commit.expected_version``, and :class:`WorkflowNotFoundError` if the workflow does not
        exist.

        Every field of the update is written, ``progress`` included: it replaces the stored
        document as a whole (the engine sends the complete document on every commit) and is
        returned as stored by the next load.

        Every JSON value of the call (the update's state, metadata, saga stack and progress,
        audit data, metric tags, log metadata, compensation results and states) is serialized with
        :func:`ruvon.serialization.dumps` before anything is written. A value it cannot
        serialize (e.g. an arbitrary object) raises the codec's ``TypeError`` as is, not wrapped
        in :class:`PersistenceError`, and nothing is written: the stored workflow, its version
        and its entries stay as they were. Every store behaves alike, the memory store included.
        """
        ...

    async def list_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        parent_workflow_id: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        """Workflows matching every given filter, newest first (``created_at`` descending,
        creation order breaking ties), skipping ``offset`` and returning at most ``limit``.

        A filter left ``None`` matches everything. ``status`` is one status or a sequence of
        them (any matches; an empty sequence matches nothing; ``WAITING_HUMAN`` also matches
        the legacy ``WAITING_HUMAN_INPUT``; an unknown status is a ``ValueError``).
        ``parent_workflow_id`` matches ``parent_execution_id``. ``created_after`` is inclusive
        (``created_at >= created_after``) and ``created_before`` exclusive
        (``created_at < created_before``); both must be timezone-aware. Raises ``ValueError``
        naming the argument for a naive datetime or a negative ``limit`` or ``offset``.
        """
        ...

    async def count_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        parent_workflow_id: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> int:
        """How many workflows :meth:`list_workflows` would find with the same filters and no
        limit (e.g. the total for paging)."""
        ...

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow with its audit, logs, metrics, heartbeat, tasks and compensation
        log. False if absent."""
        ...


@runtime_checkable
class AuditLog(Protocol):
    """The audit trail, execution logs and metrics kept next to each workflow."""

    async def log_audit_event(self, workflow_id: str, event: AuditEvent) -> None:
        """Append one audit entry outside a step commit (e.g. a user action)."""
        ...

    async def get_audit_log(
        self, workflow_id: str, *, event_type: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """Audit entries of a workflow in the order they were written."""
        ...

    async def log_execution(self, workflow_id: str, entry: LogEntry) -> None:
        """Append one execution log line."""
        ...

    async def get_execution_logs(
        self,
        workflow_id: str,
        *,
        step_name: str | None = None,
        level: str | None = None,
        limit: int = 50,
    ) -> list[LogEntry]:
        """Execution log lines of a workflow in the order they were written."""
        ...

    async def record_metric(self, workflow_id: str, point: MetricPoint) -> None:
        """Store one metric point."""
        ...

    async def get_workflow_metrics(
        self,
        *,
        workflow_id: str | None = None,
        workflow_type: str | None = None,
        metric_name: str | None = None,
        limit: int = 100,
    ) -> list[MetricPoint]:
        """Metric points matching the filters, in the order they were recorded."""
        ...


@runtime_checkable
class HeartbeatStore(Protocol):
    """Heartbeat rows that make a step in progress visible (and a crashed worker detectable)."""

    async def upsert_heartbeat(
        self,
        workflow_id: str,
        worker_id: str,
        current_step: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create or refresh the heartbeat of a workflow (one row per workflow)."""
        ...

    async def delete_heartbeat(self, workflow_id: str) -> None:
        """Remove the heartbeat of a workflow, if any."""
        ...

    async def get_stale_heartbeats(self, stale_threshold_seconds: float = 120) -> list[Heartbeat]:
        """Heartbeats older than the threshold, oldest first."""
        ...


@runtime_checkable
class TaskQueue(Protocol):
    """Step tasks that workers claim atomically (for distributed executors).

    The one rule: two concurrent ``claim_next_task`` calls never get the same task, even from
    different processes sharing the database; nor do two ``claim_task`` calls of one task by
    different workers both succeed.
    """

    async def create_task_record(
        self,
        execution_id: str,
        step_name: str,
        step_index: int,
        *,
        task_data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_retries: int = 3,
    ) -> TaskRecord:
        """Queue a PENDING task for a step of workflow ``execution_id`` and return it.

        If ``idempotency_key`` is already held by a task, nothing is written and that task is
        returned. Raises :class:`WorkflowNotFoundError` if the workflow does not exist.
        """
        ...

    async def claim_next_task(
        self, worker_id: str, *, step_name: str | None = None
    ) -> TaskRecord | None:
        """Atomically take the oldest PENDING task (of ``step_name``, if given) for
        ``worker_id``: it becomes CLAIMED with ``worker_id`` and ``claimed_at`` set. ``None``
        when no task is waiting."""
        ...

    async def claim_task(
        self, task_id: str, worker_id: str, *, stale_after_seconds: float
    ) -> TaskRecord | None:
        """Take the task ``task_id`` for ``worker_id`` with one conditional write, atomic even
        across processes sharing the database; return the task as stored, or ``None``.

        The claim succeeds when the task is PENDING; or CLAIMED/RUNNING by another worker
        whose claim was last renewed (its ``updated_at``) more than ``stale_after_seconds``
        ago (that worker is taken for dead); or CLAIMED/RUNNING by ``worker_id`` itself (a
        renewal). The task then becomes RUNNING with ``worker_id`` set, ``claimed_at`` set to
        now unless this is a renewal (which keeps it), ``started_at`` set if it was not, and
        ``updated_at`` set to now. Times are the database's clock in the SQL stores.

        Returns ``None`` and writes nothing when another live worker holds the task, when it
        is COMPLETED or FAILED, or when there is no such task. A distributed worker claims a
        task before it runs the step's function and calls this again (a renewal) more often
        than ``stale_after_seconds`` while the function runs, so a duplicate delivery is
        refused and a killed worker's task can be taken over once its claim is stale. Raises
        ``ValueError`` naming ``stale_after_seconds`` unless it is a positive finite number.
        """
        ...

    async def update_task_status(
        self,
        task_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> TaskRecord:
        """Set a task's status and return the task as stored.

        RUNNING sets ``started_at``; COMPLETED and FAILED set ``completed_at``; FAILED also adds
        one to ``retry_count``. ``result`` and ``error_message`` (stored as ``last_error``) are
        written when given. Raises ``ValueError`` for a status not in :data:`TASK_STATUSES` and
        :class:`TaskNotFoundError` for an unknown task.
        """
        ...

    async def get_task_record(self, task_id: str) -> TaskRecord | None:
        """The stored task, or ``None``."""
        ...


@runtime_checkable
class PersistenceProvider(
    WorkflowStore,
    AuditLog,
    HeartbeatStore,
    TaskQueue,
    ScheduleStore,
    CompensationLog,
    RecoveryStore,
    LeaseStore,
    Protocol,
):
    """Everything the engine needs from a store."""
