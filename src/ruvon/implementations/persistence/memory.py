"""A complete persistence provider in dictionaries.

It is the readable specification of the contract and a product feature (tests, prototypes,
short-lived processes); everything is lost when the process exits. Each method runs without an
``await`` between its reads and writes, which makes it atomic on the event loop.

JSON values (state, metadata, saga stack, progress, definition snapshot, audit data, log
metadata, metric tags, heartbeat metadata, task data and results) are kept as the JSON text the
codec wrote (:func:`ruvon.serialization.serialize`), exactly as the SQL stores keep it, and
parsed with :func:`~ruvon.serialization.loads` on every read. So a value the codec rejects is
rejected here too (its ``TypeError``, before anything is written), what comes back is
JSON-normalized like from SQL, and every read returns fresh values that the caller may change
freely.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ruvon.errors import PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence._columns import UPDATED_COLUMNS, WORKFLOW_COLUMNS
from ruvon.implementations.persistence._memory_compensation import MemoryCompensationLog
from ruvon.implementations.persistence._memory_entries import MemoryEntries, json_or_none, now
from ruvon.implementations.persistence._memory_leases import MemoryLeases, check_lease
from ruvon.implementations.persistence._memory_recovery import MemoryRecovery
from ruvon.implementations.persistence._memory_schedules import MemoryScheduleStore
from ruvon.implementations.persistence._memory_tasks import MemoryTaskQueue
from ruvon.models import statuses_matching
from ruvon.providers.persistence import (
    AuditEvent,
    WorkflowCommit,
    WorkflowRecord,
    check_aware,
    check_page,
)
from ruvon.providers.records import new_commit_token
from ruvon.serialization import loads, serialize

__all__ = ["InMemoryPersistence", "InMemoryPersistenceProvider", "MemoryPersistenceProvider"]


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (a naive datetime is taken to be UTC), as the SQL stores keep times."""
    if moment is None:
        return None
    zone = moment.tzinfo
    if zone is timezone.utc:
        return moment
    if zone is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


# The record's fields by how they are kept, from the declaration of the SQL stores' columns
# (``_columns``): JSON values as the codec's text, times in UTC, the rest as they are.
_JSON_FIELDS = tuple(column.name for column in WORKFLOW_COLUMNS if column.kind == "json")
_JSON_LEFT_OUT: dict[str, Any] = dict.fromkeys(_JSON_FIELDS)
"""The JSON fields of a kept record: ``None``, the text being kept beside it."""
# ... and the fields a commit writes (those of WorkflowUpdate but its workflow_id).
_UPDATED_JSON = tuple(column.name for column in UPDATED_COLUMNS if column.kind == "json")
_UPDATED_TIMES = tuple(column.name for column in UPDATED_COLUMNS if column.kind == "time")
_UPDATED_PLAIN = tuple(
    column.name for column in UPDATED_COLUMNS if column.kind not in ("json", "time")
)


_FIELDS = tuple(column.name for column in WORKFLOW_COLUMNS)
"""The record's fields in declaration order (checked against ``WorkflowRecord`` at import)."""


_ALL_VALUES = operator.attrgetter(*_FIELDS)
_POSITION = {name: position for position, name in enumerate(_FIELDS)}
_UPDATED_PLAIN_VALUES = operator.attrgetter(*_UPDATED_PLAIN)
# (attrgetter of one name returns the value, not a 1-tuple: both lists have several names.)
if len(_FIELDS) < 2 or len(_UPDATED_PLAIN) < 2:  # pragma: no cover - a declaration error
    raise RuntimeError("memory store: the workflow row's columns changed shape")


def _with(record: WorkflowRecord, changes: dict[str, Any]) -> WorkflowRecord:
    """``dataclasses.replace(record, **changes)``, several times faster: it runs per commit
    (the fields are read in one C call, then the changed ones are put in place)."""
    values = list(_ALL_VALUES(record))
    for name, value in changes.items():
        values[_POSITION[name]] = value
    return WorkflowRecord(*values)


@dataclass(frozen=True, slots=True)
class _StoredWorkflow:
    """A workflow as kept: the record's plain fields (its JSON fields are ``None``, never
    read), the JSON fields as the codec wrote them (field name → text), and the insertion
    sequence."""

    record: WorkflowRecord
    json: dict[str, str]
    seq: int

    def load(self) -> WorkflowRecord:
        """The workflow as returned: a fresh record with fresh JSON values."""
        return _with(self.record, {name: loads(text) for name, text in self.json.items()})


class MemoryPersistenceProvider(
    MemoryScheduleStore,
    MemoryEntries,
    MemoryCompensationLog,
    MemoryTaskQueue,
    MemoryRecovery,
    MemoryLeases,
):
    """Keeps workflows, audit entries, logs, metrics, heartbeats, tasks and schedules in process
    memory.

    The workflow rows are here; entries and heartbeats are in ``_memory_entries``, the task
    queue in ``_memory_tasks``, the cron schedules in ``_memory_schedules``, the compensation
    log in ``_memory_compensation``, crash recovery's conditional writes in
    ``_memory_recovery``, leases in ``_memory_leases``.
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
        json = {name: serialize(getattr(record, name)) for name in _JSON_FIELDS}
        entries = [(event, json_or_none(event.data)) for event in audit]
        key = record.idempotency_key
        if key is not None and key in self._idempotency:
            return self._workflows[self._idempotency[key]].load()
        if record.id in self._workflows:
            raise PersistenceError(f"Workflow '{record.id}' already exists.")
        at = now()
        plain = _with(
            record,
            {
                **_JSON_LEFT_OUT,
                "version": 1,
                "created_at": _utc(record.created_at) or at,
                "updated_at": at,
                "completed_at": _utc(record.completed_at),
            },
        )
        stored = _StoredWorkflow(plain, json, self._id())
        self._workflows[record.id] = stored
        if key is not None:
            self._idempotency[key] = record.id
        self._append_entries(record.id, entries, (), (), at)
        return stored.load()

    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.load()

    def _kept(self, workflow_id: str) -> WorkflowRecord | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.record

    def _change(self, workflow_id: str, changes: dict[str, Any]) -> None:
        stored = self._workflows[workflow_id]
        self._workflows[workflow_id] = _StoredWorkflow(
            _with(stored.record, changes), stored.json, stored.seq
        )

    def _workflow_ids(self) -> list[str]:
        return list(self._workflows)

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        update, expected_version = commit.update, commit.expected_version
        # Everything is serialized first: a value the codec rejects raises before any write.
        json = {name: serialize(getattr(update, name)) for name in _UPDATED_JSON}
        audit_entries = [(event, json_or_none(event.data)) for event in commit.audit]
        metric_entries = [(point, json_or_none(point.tags)) for point in commit.metrics]
        log_entries = [(entry, json_or_none(entry.metadata)) for entry in commit.logs]
        compensations = (
            self._encode_compensations(commit.compensations) if commit.compensations else ()
        )
        current = self._workflows.get(update.workflow_id)
        if current is None:
            raise WorkflowNotFoundError(update.workflow_id)
        at = now()
        kept = current.record
        if kept.version != expected_version or kept.lease_owner is not None:
            check_lease(kept, expected_version, commit.lease_holder, at)
        changes: dict[str, Any] = dict(
            zip(_UPDATED_PLAIN, _UPDATED_PLAIN_VALUES(update), strict=True)
        )
        for name in _UPDATED_TIMES:
            changes[name] = _utc(getattr(update, name))
        if changes["commit_token"] is None:
            changes["commit_token"] = new_commit_token()
        changes["version"] = expected_version + 1
        changes["updated_at"] = at
        record = _with(current.record, changes)
        self._workflows[update.workflow_id] = _StoredWorkflow(
            record, {**current.json, **json}, current.seq
        )
        self._append_entries(update.workflow_id, audit_entries, metric_entries, log_entries, at)
        if compensations:
            self._append_compensations(update.workflow_id, compensations, at)
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
        self._drop_compensations(workflow_id)
        return True

    def _require(self, workflow_id: str) -> None:
        if workflow_id not in self._workflows:
            raise WorkflowNotFoundError(workflow_id)

    def _workflow_type(self, workflow_id: str) -> str | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.record.workflow_type


InMemoryPersistenceProvider = MemoryPersistenceProvider
InMemoryPersistence = MemoryPersistenceProvider
