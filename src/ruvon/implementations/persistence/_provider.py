"""The contract methods that are the same SQL on SQLite and PostgreSQL.

:class:`SQLProvider` implements them over three primitives that each dialect provides (run a
query, run a write, run a write that returns rows). A dialect module adds only its connection
handling, its error translation and the two write paths it does its own way:
``create_workflow`` and ``commit_workflow``.
"""

from __future__ import annotations

import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from ruvon.errors import TaskNotFoundError, WorkflowNotFoundError
from ruvon.implementations.persistence import _queries, _rows, _sql
from ruvon.implementations.persistence._sql_compensation import SQLCompensationLog
from ruvon.implementations.persistence._sql_leases import SQLLeases
from ruvon.implementations.persistence._sql_recovery import SQLRecovery
from ruvon.implementations.persistence._sql_schedules import SQLScheduleStore
from ruvon.providers import step_log
from ruvon.providers.persistence import (
    AuditEvent,
    Heartbeat,
    LogEntry,
    MetricPoint,
    TaskRecord,
    WorkflowRecord,
    check_task_status,
)

__all__ = ["SQLProvider"]

P = TypeVar("P", bound="SQLProvider")


class SQLProvider(SQLScheduleStore, SQLCompensationLog, SQLRecovery, SQLLeases, ABC):
    """Base of the SQL persistence providers (not part of the public API); the cron schedules'
    methods are in ``_sql_schedules``, the compensation log's in ``_sql_compensation``, crash
    recovery's conditional writes in ``_sql_recovery``, leases in ``_sql_leases``."""

    dialect: ClassVar[_sql.Dialect]
    statements: ClassVar[_sql.Statements]

    @abstractmethod
    async def initialize(self) -> None:
        """Connect and bring the schema up to date. Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; ``initialize`` may follow."""

    async def __aenter__(self: P) -> P:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what a dialect provides -----------------------------------------------------------

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows of a query in this dialect's text; ``action`` names it in errors."""

    @abstractmethod
    async def _execute(
        self, sql: str, args: Sequence[Any], action: str, *, workflow_id: str | None = None
    ) -> int:
        """Run one write statement in its own transaction; return the rows it changed.

        If ``workflow_id`` is given, a foreign-key violation (the workflow was deleted while
        the statement ran) raises :class:`WorkflowNotFoundError` for it.
        """

    @abstractmethod
    async def _fetch_write(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """Run one write statement with ``RETURNING`` in its own write transaction (SQLite:
        ``BEGIN IMMEDIATE``); return the rows it returned."""

    # -- shared ----------------------------------------------------------------------------

    async def _insert_for(self, workflow_id: str, sql: str, args: Sequence[Any]) -> None:
        """Run an ``INSERT ... SELECT ... WHERE id = $1``; no row means no such workflow."""
        action = f"write an entry of workflow '{workflow_id}'"
        if await self._execute(sql, args, action, workflow_id=workflow_id) == 0:
            raise WorkflowNotFoundError(workflow_id)

    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The stored workflow, or ``None``."""
        rows = await self._fetch(
            self.statements.select_workflow, [workflow_id], f"load workflow '{workflow_id}'"
        )
        return _rows.workflow_from_row(rows[0], self.dialect) if rows else None

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
        """Workflows matching every given filter, newest first; see the Protocol."""
        filters = _queries.WorkflowFilters(
            status=status,
            workflow_type=workflow_type,
            parent_workflow_id=parent_workflow_id,
            owner_id=owner_id,
            org_id=org_id,
            created_after=created_after,
            created_before=created_before,
        )
        text, args = _queries.list_workflows_query(
            filters, self.dialect, limit=limit, offset=offset
        )
        rows = await self._fetch(self.dialect.sql(text), args, "list workflows")
        return [_rows.workflow_from_row(row, self.dialect) for row in rows]

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
        """How many workflows match every given filter; see the Protocol."""
        filters = _queries.WorkflowFilters(
            status=status,
            workflow_type=workflow_type,
            parent_workflow_id=parent_workflow_id,
            owner_id=owner_id,
            org_id=org_id,
            created_after=created_after,
            created_before=created_before,
        )
        text, args = _queries.count_workflows_query(filters, self.dialect)
        rows = await self._fetch(self.dialect.sql(text), args, "count workflows")
        return int(rows[0][0])

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow; its audit, logs, metrics, heartbeat and tasks go with it (cascade)."""
        sql = self.statements.delete_workflow
        return await self._execute(sql, [workflow_id], f"delete workflow '{workflow_id}'") > 0

    async def log_audit_event(self, workflow_id: str, event: AuditEvent) -> None:
        """Append one audit entry outside a step commit."""
        args = _rows.audit_rows(workflow_id, [event])[0]
        await self._insert_for(workflow_id, self.statements.insert_audit, args)

    async def get_audit_log(
        self, workflow_id: str, *, event_type: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """Audit entries of a workflow in the order they were written."""
        text, args = _queries.audit_query(workflow_id, event_type, limit)
        rows = await self._fetch(self.dialect.sql(text), args, "read the audit log")
        return [_rows.audit_from_row(row, self.dialect) for row in rows]

    async def log_execution(self, workflow_id: str, entry: LogEntry) -> None:
        """Append one execution log line."""
        args = _rows.log_rows(workflow_id, [entry])[0]
        await self._insert_for(workflow_id, self.statements.insert_log, args)

    async def get_execution_logs(
        self,
        workflow_id: str,
        *,
        step_name: str | None = None,
        level: str | None = None,
        limit: int = 50,
    ) -> list[LogEntry]:
        """Execution log lines of a workflow in the order they were written, with the per-step
        lines read from the audit log (:mod:`ruvon.providers.step_log`)."""
        text, args = _queries.logs_query(workflow_id, step_name, level, limit)
        rows = await self._fetch(self.dialect.sql(text), args, "read execution logs")
        stored = [_rows.log_from_row(row, self.dialect) for row in rows]
        if not step_log.wants_step_lines(level):
            return stored
        text, args = _queries.step_log_audit_query(workflow_id, step_name, limit)
        rows = await self._fetch(self.dialect.sql(text), args, "read execution logs")
        derived = [step_log.step_log_entry(_rows.audit_from_row(row, self.dialect)) for row in rows]
        return step_log.merge_logs(stored, derived, limit)

    async def record_metric(self, workflow_id: str, point: MetricPoint) -> None:
        """Store one metric point."""
        args = _rows.metric_rows(workflow_id, [point])[0]
        await self._insert_for(workflow_id, self.statements.insert_metric, args)

    async def get_workflow_metrics(
        self,
        *,
        workflow_id: str | None = None,
        workflow_type: str | None = None,
        metric_name: str | None = None,
        limit: int = 100,
    ) -> list[MetricPoint]:
        """Metric points matching the filters, in the order they were recorded."""
        text, args = _queries.metrics_query(workflow_id, workflow_type, metric_name, limit)
        rows = await self._fetch(self.dialect.sql(text), args, "read metrics")
        return [_rows.metric_from_row(row, self.dialect) for row in rows]

    async def upsert_heartbeat(
        self,
        workflow_id: str,
        worker_id: str,
        current_step: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create or refresh the heartbeat of a workflow (one row per workflow)."""
        args = (workflow_id, worker_id, current_step, _sql.json_text(metadata))
        await self._insert_for(workflow_id, self.statements.upsert_heartbeat, args)

    async def delete_heartbeat(self, workflow_id: str) -> None:
        """Remove the heartbeat of a workflow, if any."""
        sql = self.statements.delete_heartbeat
        await self._execute(sql, [workflow_id], f"delete the heartbeat of '{workflow_id}'")

    async def get_stale_heartbeats(self, stale_threshold_seconds: float = 120) -> list[Heartbeat]:
        """Heartbeats older than the threshold, oldest first."""
        args = [self.dialect.stale_arg(stale_threshold_seconds)]
        rows = await self._fetch(self.statements.stale_heartbeats, args, "scan heartbeats")
        return [_rows.heartbeat_from_row(row, self.dialect) for row in rows]

    # -- task queue --------------------------------------------------------------------------

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
        """Queue a PENDING task; a taken idempotency key returns the task holding it."""
        task_id = str(uuid.uuid4())
        args = (
            execution_id,
            task_id,
            step_name,
            step_index,
            max_retries,
            _sql.json_text(task_data or {}),
            idempotency_key,
        )
        action = f"queue a task of workflow '{execution_id}'"
        inserted = await self._execute(
            self.statements.insert_task, args, action, workflow_id=execution_id
        )
        if inserted:
            task = await self.get_task_record(task_id)
        elif idempotency_key is not None:
            # No row: either the key is taken (that task is the answer) or no such workflow.
            rows = await self._fetch(self.statements.select_task_by_key, [idempotency_key], action)
            task = _rows.task_from_row(rows[0], self.dialect) if rows else None
        else:
            task = None
        if task is None:
            raise WorkflowNotFoundError(execution_id)
        return task

    async def claim_next_task(
        self, worker_id: str, *, step_name: str | None = None
    ) -> TaskRecord | None:
        """Atomically take the oldest PENDING task (of ``step_name``, if given)."""
        rows = await self._fetch_write(
            self.statements.claim_task, [worker_id, step_name], f"claim a task for '{worker_id}'"
        )
        return _rows.task_from_row(rows[0], self.dialect) if rows else None

    async def claim_task(
        self, task_id: str, worker_id: str, *, stale_after_seconds: float
    ) -> TaskRecord | None:
        """Take task ``task_id`` for ``worker_id`` (or renew its claim) with one conditional
        UPDATE; ``None`` when a live worker holds it or it is finished or unknown. See the
        Protocol. The statement's WHERE is the whole decision: PostgreSQL re-checks it on the
        row a concurrent claim just wrote, SQLite runs it under the write lock."""
        _check_stale_after(stale_after_seconds)
        args = [self.dialect.stale_arg(stale_after_seconds), task_id, worker_id]
        rows = await self._fetch_write(
            self.statements.claim_task_by_id, args, f"claim task '{task_id}' for '{worker_id}'"
        )
        return _rows.task_from_row(rows[0], self.dialect) if rows else None

    async def update_task_status(
        self,
        task_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> TaskRecord:
        """Set a task's status (and its timestamps, retry count, result and error)."""
        check_task_status(status)
        args = [task_id, status, _sql.json_text(result), error_message]
        rows = await self._fetch_write(
            self.statements.update_task, args, f"update task '{task_id}'"
        )
        if not rows:
            raise TaskNotFoundError(task_id)
        return _rows.task_from_row(rows[0], self.dialect)

    async def get_task_record(self, task_id: str) -> TaskRecord | None:
        """The stored task, or ``None``."""
        rows = await self._fetch(self.statements.select_task, [task_id], f"load task '{task_id}'")
        return _rows.task_from_row(rows[0], self.dialect) if rows else None


def _check_stale_after(seconds: float) -> None:
    """Raise ``ValueError`` unless ``seconds`` is a positive finite number."""
    if not 0 < seconds < math.inf:
        raise ValueError(f"stale_after_seconds must be a positive number, got {seconds!r}.")
