"""A complete persistence provider in dictionaries.

It is the readable specification of the contract and a product feature (tests, prototypes,
short-lived processes); everything is lost when the process exits. Each method runs without an
``await`` between its reads and writes, which makes it atomic on the event loop.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ruvon.errors import (
    ConcurrencyConflictError,
    PersistenceError,
    TaskNotFoundError,
    WorkflowNotFoundError,
)
from ruvon.models import statuses_matching
from ruvon.providers.persistence import (
    AuditEvent,
    Heartbeat,
    LogEntry,
    MetricPoint,
    TaskRecord,
    WorkflowRecord,
    WorkflowUpdate,
    check_task_status,
)
from ruvon.serialization import dumps, loads

__all__ = ["InMemoryPersistence", "InMemoryPersistenceProvider", "MemoryPersistenceProvider"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class MemoryPersistenceProvider:
    """Keeps workflows, audit entries, logs, metrics, heartbeats and tasks in process memory."""

    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowRecord] = {}
        self._idempotency: dict[str, str] = {}
        self._audit: dict[str, list[tuple[AuditEvent, int, datetime]]] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._metrics: list[tuple[str, MetricPoint, int, datetime]] = []
        self._heartbeats: dict[str, Heartbeat] = {}
        self._tasks: dict[str, TaskRecord] = {}
        self._task_keys: dict[str, str] = {}
        self._next_id = 0

    async def initialize(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> MemoryPersistenceProvider:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- workflows -------------------------------------------------------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        key = record.idempotency_key
        if key is not None and key in self._idempotency:
            return self._copy(self._workflows[self._idempotency[key]])
        if record.id in self._workflows:
            raise PersistenceError(f"Workflow '{record.id}' already exists.")
        now = _now()
        # Callers hand over freshly built values and never touch them again (see
        # commit_workflow), so they are stored without copying; reads return copies.
        stored = dataclasses.replace(
            record, version=1, created_at=record.created_at or now, updated_at=now
        )
        self._workflows[record.id] = stored
        if key is not None:
            self._idempotency[key] = record.id
        self._append_audit(record.id, audit, now)
        return stored

    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        record = self._workflows.get(workflow_id)
        return None if record is None else self._copy(record)

    async def commit_workflow(
        self,
        update: WorkflowUpdate,
        *,
        expected_version: int,
        audit: Sequence[AuditEvent] = (),
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogEntry] = (),
    ) -> int:
        current = self._workflows.get(update.workflow_id)
        if current is None:
            raise WorkflowNotFoundError(update.workflow_id)
        if current.version != expected_version:
            raise ConcurrencyConflictError(update.workflow_id, expected_version)
        now = _now()
        # The engine hands over freshly built values and never touches them again, so they are
        # stored without copying; reads return copies.
        c = current
        self._workflows[update.workflow_id] = WorkflowRecord(
            c.id,
            c.workflow_type,
            c.workflow_version,
            c.definition_snapshot,
            c.state_model_path,
            update.status,
            update.state,
            update.current_step,
            update.current_step_index,
            update.metadata,
            update.completed_steps_stack,
            update.saga_mode,
            c.parent_execution_id,
            update.blocked_on_child_id,
            c.owner_id,
            c.org_id,
            c.data_region,
            c.priority,
            c.idempotency_key,
            update.error_message,
            expected_version + 1,
            c.created_at,
            now,
            update.completed_at,
        )
        self._append_audit(update.workflow_id, audit, now)
        for point in metrics:
            self._store_metric(update.workflow_id, point, now)
        for entry in logs:
            self._store_log(update.workflow_id, entry, now)
        return expected_version + 1

    async def list_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        parent_workflow_id: str | None = None,
        owner_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkflowRecord]:
        statuses = statuses_matching(status)
        matches = [
            record
            for record in self._workflows.values()
            if (statuses is None or record.status in statuses)
            and (workflow_type is None or record.workflow_type == workflow_type)
            and (parent_workflow_id is None or record.parent_execution_id == parent_workflow_id)
            and (owner_id is None or record.owner_id == owner_id)
        ]
        # Insertion order is creation order; newest first.
        matches.reverse()
        return [self._copy(record) for record in matches[offset : offset + limit]]

    async def delete_workflow(self, workflow_id: str) -> bool:
        record = self._workflows.pop(workflow_id, None)
        if record is None:
            return False
        if record.idempotency_key is not None:
            self._idempotency.pop(record.idempotency_key, None)
        self._audit.pop(workflow_id, None)
        self._logs.pop(workflow_id, None)
        self._heartbeats.pop(workflow_id, None)
        self._metrics = [entry for entry in self._metrics if entry[0] != workflow_id]
        for task in [task for task in self._tasks.values() if task.execution_id == workflow_id]:
            del self._tasks[task.task_id]
            if task.idempotency_key is not None:
                self._task_keys.pop(task.idempotency_key, None)
        return True

    @staticmethod
    def _copy(record: WorkflowRecord) -> WorkflowRecord:
        # A JSON round trip copies and normalizes values exactly as the SQL stores return them.
        return dataclasses.replace(
            record,
            state=loads(dumps(record.state)),
            metadata=loads(dumps(record.metadata)),
            completed_steps_stack=loads(dumps(record.completed_steps_stack)),
        )

    def _require(self, workflow_id: str) -> None:
        if workflow_id not in self._workflows:
            raise WorkflowNotFoundError(workflow_id)

    # -- audit, logs, metrics --------------------------------------------------------------

    def _append_audit(self, workflow_id: str, events: Sequence[AuditEvent], now: datetime) -> None:
        if not events:
            return
        # Entries are kept as handed over, with their id and time; records are built on read.
        entries = self._audit.setdefault(workflow_id, [])
        for event in events:
            entries.append((event, self._id(), now))

    def _store_metric(self, workflow_id: str, point: MetricPoint, now: datetime) -> None:
        self._metrics.append((workflow_id, point, self._id(), now))

    def _store_log(self, workflow_id: str, entry: LogEntry, now: datetime) -> None:
        self._logs.setdefault(workflow_id, []).append(
            dataclasses.replace(
                entry,
                level=entry.level.upper(),
                workflow_id=workflow_id,
                id=self._id(),
                logged_at=now,
            )
        )

    async def log_audit_event(self, workflow_id: str, event: AuditEvent) -> None:
        self._require(workflow_id)
        self._append_audit(workflow_id, [event], _now())

    async def get_audit_log(
        self, workflow_id: str, *, event_type: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        events = [
            dataclasses.replace(event, workflow_id=workflow_id, id=entry_id, timestamp=at)
            for event, entry_id, at in self._audit.get(workflow_id, [])
            if event_type is None or event.event_type == event_type
        ]
        return events[:limit]

    async def log_execution(self, workflow_id: str, entry: LogEntry) -> None:
        self._require(workflow_id)
        self._store_log(workflow_id, entry, _now())

    async def get_execution_logs(
        self,
        workflow_id: str,
        *,
        step_name: str | None = None,
        level: str | None = None,
        limit: int = 50,
    ) -> list[LogEntry]:
        entries = [
            entry
            for entry in self._logs.get(workflow_id, [])
            if (step_name is None or entry.step_name == step_name)
            and (level is None or entry.level == level.upper())
        ]
        return entries[:limit]

    async def record_metric(self, workflow_id: str, point: MetricPoint) -> None:
        self._require(workflow_id)
        self._store_metric(workflow_id, point, _now())

    async def get_workflow_metrics(
        self,
        *,
        workflow_id: str | None = None,
        workflow_type: str | None = None,
        metric_name: str | None = None,
        limit: int = 100,
    ) -> list[MetricPoint]:
        points = []
        for owner, point, entry_id, at in self._metrics:
            record = self._workflows.get(owner)
            kind = point.workflow_type or (record.workflow_type if record else None)
            if (
                (workflow_id is None or owner == workflow_id)
                and (workflow_type is None or kind == workflow_type)
                and (metric_name is None or point.metric_name == metric_name)
            ):
                points.append(
                    dataclasses.replace(
                        point,
                        metric_value=float(point.metric_value),
                        workflow_id=owner,
                        workflow_type=kind,
                        id=entry_id,
                        recorded_at=at,
                    )
                )
                if len(points) >= limit:
                    break
        return points

    # -- heartbeats ------------------------------------------------------------------------

    async def upsert_heartbeat(
        self,
        workflow_id: str,
        worker_id: str,
        current_step: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._require(workflow_id)
        self._heartbeats[workflow_id] = Heartbeat(
            workflow_id=workflow_id,
            worker_id=worker_id,
            current_step=current_step,
            last_heartbeat=_now(),
            metadata=copy.deepcopy(metadata),
        )

    async def delete_heartbeat(self, workflow_id: str) -> None:
        self._heartbeats.pop(workflow_id, None)

    async def get_stale_heartbeats(self, stale_threshold_seconds: float = 120) -> list[Heartbeat]:
        cutoff = _now() - timedelta(seconds=stale_threshold_seconds)
        stale = [beat for beat in self._heartbeats.values() if beat.last_heartbeat < cutoff]
        return sorted(stale, key=lambda beat: beat.last_heartbeat)

    # -- task queue ------------------------------------------------------------------------

    @staticmethod
    def _copy_task(task: TaskRecord) -> TaskRecord:
        return dataclasses.replace(
            task,
            task_data=loads(dumps(task.task_data)),
            result=None if task.result is None else loads(dumps(task.result)),
        )

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
        if idempotency_key is not None and idempotency_key in self._task_keys:
            return self._copy_task(self._tasks[self._task_keys[idempotency_key]])
        self._require(execution_id)
        now = _now()
        task = TaskRecord(
            task_id=str(uuid.uuid4()),
            execution_id=execution_id,
            step_name=step_name,
            step_index=step_index,
            status="PENDING",
            max_retries=max_retries,
            task_data=loads(dumps(task_data or {})),
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        self._tasks[task.task_id] = task
        if idempotency_key is not None:
            self._task_keys[idempotency_key] = task.task_id
        return self._copy_task(task)

    async def claim_next_task(
        self, worker_id: str, *, step_name: str | None = None
    ) -> TaskRecord | None:
        # No await between finding the task and taking it: atomic on the event loop.
        waiting = [
            task
            for task in self._tasks.values()
            if task.status == "PENDING" and (step_name is None or task.step_name == step_name)
        ]
        if not waiting:
            return None
        # min() keeps the first of equal times: insertion order breaks ties.
        oldest = min(waiting, key=lambda task: task.created_at or _now())
        now = _now()
        claimed = dataclasses.replace(
            oldest, status="CLAIMED", worker_id=worker_id, claimed_at=now, updated_at=now
        )
        self._tasks[claimed.task_id] = claimed
        return self._copy_task(claimed)

    async def update_task_status(
        self,
        task_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> TaskRecord:
        check_task_status(status)
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        now = _now()
        updated = dataclasses.replace(
            task,
            status=status,
            started_at=now if status == "RUNNING" else task.started_at,
            completed_at=now if status in ("COMPLETED", "FAILED") else task.completed_at,
            retry_count=task.retry_count + (1 if status == "FAILED" else 0),
            last_error=task.last_error if error_message is None else error_message,
            result=task.result if result is None else loads(dumps(result)),
            updated_at=now,
        )
        self._tasks[task_id] = updated
        return self._copy_task(updated)

    async def get_task_record(self, task_id: str) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        return None if task is None else self._copy_task(task)


InMemoryPersistenceProvider = MemoryPersistenceProvider
InMemoryPersistence = MemoryPersistenceProvider
