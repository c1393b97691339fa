"""A complete persistence provider in dictionaries.

It is the readable specification of the contract and a product feature (tests, prototypes,
short-lived processes); everything is lost when the process exits. Each method runs without an
``await`` between its reads and writes, which makes it atomic on the event loop.

JSON values (state, metadata, saga stack, definition snapshot, audit data, log metadata, metric
tags, heartbeat metadata, task data and results) are kept as the JSON text the codec wrote
(:func:`ruvon.serialization.serialize`), exactly as the SQL stores keep it, and parsed
with :func:`~ruvon.serialization.loads` on every read. So a value the codec rejects is rejected
here too (its ``TypeError``, before anything is written), what comes back is JSON-normalized
like from SQL, and every read returns fresh values that the caller may change freely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence._memory_entries import MemoryEntries, json_or_none, now
from ruvon.implementations.persistence._memory_tasks import MemoryTaskQueue
from ruvon.models import statuses_matching
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    WorkflowRecord,
    WorkflowUpdate,
    check_aware,
    check_page,
)
from ruvon.serialization import loads, serialize

__all__ = ["InMemoryPersistence", "InMemoryPersistenceProvider", "MemoryPersistenceProvider"]


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (a naive datetime is taken to be UTC), as the SQL stores keep times."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class _StoredWorkflow:
    """A workflow as kept: the record's plain fields (its JSON fields are left empty and never
    read), the JSON fields as the codec wrote them, and the insertion sequence."""

    record: WorkflowRecord
    definition_snapshot: str
    state: str
    metadata: str
    completed_steps_stack: str
    seq: int

    def load(self) -> WorkflowRecord:
        """The workflow as returned: a fresh record with fresh JSON values."""
        return dataclasses.replace(
            self.record,
            definition_snapshot=loads(self.definition_snapshot),
            state=loads(self.state),
            metadata=loads(self.metadata),
            completed_steps_stack=loads(self.completed_steps_stack),
        )


class MemoryPersistenceProvider(MemoryEntries, MemoryTaskQueue):
    """Keeps workflows, audit entries, logs, metrics, heartbeats and tasks in process memory.

    The workflow rows are here; entries and heartbeats are in ``_memory_entries``, the task
    queue in ``_memory_tasks``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._workflows: dict[str, _StoredWorkflow] = {}
        self._idempotency: dict[str, str] = {}

    async def initialize(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> MemoryPersistenceProvider:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- workflows -------------------------------------------------------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        # Everything is serialized first: a value the codec rejects raises before any write.
        snapshot, state = serialize(record.definition_snapshot), serialize(record.state)
        metadata, stack = serialize(record.metadata), serialize(record.completed_steps_stack)
        entries = [(event, json_or_none(event.data)) for event in audit]
        key = record.idempotency_key
        if key is not None and key in self._idempotency:
            return self._workflows[self._idempotency[key]].load()
        if record.id in self._workflows:
            raise PersistenceError(f"Workflow '{record.id}' already exists.")
        at = now()
        plain = dataclasses.replace(
            record,
            definition_snapshot={},
            state={},
            metadata={},
            completed_steps_stack=[],
            version=1,
            created_at=_utc(record.created_at) or at,
            updated_at=at,
            completed_at=_utc(record.completed_at),
        )
        stored = _StoredWorkflow(plain, snapshot, state, metadata, stack, self._id())
        self._workflows[record.id] = stored
        if key is not None:
            self._idempotency[key] = record.id
        self._append_entries(record.id, entries, (), (), at)
        return stored.load()

    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.load()

    async def commit_workflow(
        self,
        update: WorkflowUpdate,
        *,
        expected_version: int,
        audit: Sequence[AuditEvent] = (),
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogEntry] = (),
    ) -> int:
        # Everything is serialized first: a value the codec rejects raises before any write.
        state, metadata = serialize(update.state), serialize(update.metadata)
        stack = serialize(update.completed_steps_stack)
        audit_entries = [(event, json_or_none(event.data)) for event in audit]
        metric_entries = [(point, json_or_none(point.tags)) for point in metrics]
        log_entries = [(entry, json_or_none(entry.metadata)) for entry in logs]
        current = self._workflows.get(update.workflow_id)
        if current is None:
            raise WorkflowNotFoundError(update.workflow_id)
        c = current.record
        if c.version != expected_version:
            raise ConcurrencyConflictError(update.workflow_id, expected_version)
        at = now()
        record = WorkflowRecord(
            c.id,
            c.workflow_type,
            c.workflow_version,
            c.definition_snapshot,
            c.state_model_path,
            update.status,
            c.state,
            update.current_step,
            update.current_step_index,
            c.metadata,
            c.completed_steps_stack,
            update.saga_mode,
            c.parent_execution_id,
            update.blocked_on_child_id,
            c.owner_id,
            c.org_id,
            c.data_region,
            c.priority,
            c.idempotency_key,
            c.idempotency_hash,
            update.error_message,
            expected_version + 1,
            c.created_at,
            at,
            _utc(update.completed_at),
        )
        self._workflows[update.workflow_id] = _StoredWorkflow(
            record, current.definition_snapshot, state, metadata, stack, current.seq
        )
        self._append_entries(update.workflow_id, audit_entries, metric_entries, log_entries, at)
        return expected_version + 1

    def _matching(
        self,
        status: str | Sequence[str] | None,
        workflow_type: str | None,
        parent_workflow_id: str | None,
        owner_id: str | None,
        org_id: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
    ) -> list[_StoredWorkflow]:
        """The workflows matching every given filter, in insertion order."""
        statuses = statuses_matching(status)
        after = check_aware("created_after", created_after)
        before = check_aware("created_before", created_before)

        def wanted(record: WorkflowRecord) -> bool:
            created = record.created_at
            assert created is not None  # set by create_workflow
            return (
                (statuses is None or record.status in statuses)
                and (workflow_type is None or record.workflow_type == workflow_type)
                and (parent_workflow_id is None or record.parent_execution_id == parent_workflow_id)
                and (owner_id is None or record.owner_id == owner_id)
                and (org_id is None or record.org_id == org_id)
                and (after is None or created >= after)
                and (before is None or created < before)
            )

        return [stored for stored in self._workflows.values() if wanted(stored.record)]

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
        matches = self._matching(
            status,
            workflow_type,
            parent_workflow_id,
            owner_id,
            org_id,
            created_after,
            created_before,
        )
        check_page(limit, offset)
        # Newest first: created_at descending, the insertion sequence breaking ties.
        ordered = sorted(
            matches, key=lambda stored: (stored.record.created_at, stored.seq), reverse=True
        )
        return [stored.load() for stored in ordered[offset : offset + limit]]

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
        return len(
            self._matching(
                status,
                workflow_type,
                parent_workflow_id,
                owner_id,
                org_id,
                created_after,
                created_before,
            )
        )

    async def delete_workflow(self, workflow_id: str) -> bool:
        stored = self._workflows.pop(workflow_id, None)
        if stored is None:
            return False
        if stored.record.idempotency_key is not None:
            self._idempotency.pop(stored.record.idempotency_key, None)
        self._drop_entries(workflow_id)
        self._drop_tasks(workflow_id)
        return True

    def _require(self, workflow_id: str) -> None:
        if workflow_id not in self._workflows:
            raise WorkflowNotFoundError(workflow_id)

    def _workflow_type(self, workflow_id: str) -> str | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.record.workflow_type


InMemoryPersistenceProvider = MemoryPersistenceProvider
InMemoryPersistence = MemoryPersistenceProvider
