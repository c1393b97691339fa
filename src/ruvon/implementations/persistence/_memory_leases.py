"""The ``LeaseStore`` part of the memory provider, and the lease check of its commits.

Like every method of the memory store, each runs without an ``await`` between its reads and
writes, so it is atomic on the event loop. The store's clock is this process's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from ruvon.errors import ConcurrencyConflictError, WorkflowLeasedError, WorkflowNotFoundError
from ruvon.implementations.persistence._memory_entries import now
from ruvon.models import WorkflowStatus
from ruvon.providers.persistence import Heartbeat, LeaseGrant, WorkflowRecord

__all__ = ["MemoryLeases", "check_lease"]

_RUNNING = frozenset({WorkflowStatus.ACTIVE.value, WorkflowStatus.PENDING_ASYNC.value})


def check_lease(
    record: WorkflowRecord, expected_version: int, holder: str | None, at: datetime
) -> None:
    """Raise what a write by ``holder`` at ``expected_version`` meets on ``record``: a stale
    version, or another owner's live lease."""
    if record.version != expected_version:
        raise ConcurrencyConflictError(record.id, expected_version)
    owner, expires = record.lease_owner, record.lease_expires_at
    if owner is not None and owner != holder and expires is not None and expires > at:
        raise WorkflowLeasedError(record.id, expected_version, owner, expires)


class MemoryLeases(ABC):
    """``claim_lease``, ``renew_lease``, ``release_lease``, ``get_expired_leases``."""

    _heartbeats: dict[str, tuple[Heartbeat, str | None]]

    @abstractmethod
    def _kept(self, workflow_id: str) -> WorkflowRecord | None:
        """The kept record (its JSON fields unset), or ``None``."""

    @abstractmethod
    def _change(self, workflow_id: str, changes: dict[str, Any]) -> None:
        """Replace fields of the kept record."""

    @abstractmethod
    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The stored workflow."""

    async def claim_lease(
        self, workflow_id: str, expected_version: int, owner: str, lease_seconds: float
    ) -> LeaseGrant:
        record = self._kept(workflow_id)
        if record is None:
            raise WorkflowNotFoundError(workflow_id)
        at = now()
        check_lease(record, expected_version, owner, at)
        grant = LeaseGrant(expected_version + 1, at + timedelta(seconds=lease_seconds), at)
        self._change(
            workflow_id,
            {
                "lease_owner": owner,
                "lease_expires_at": grant.expires_at,
                "version": grant.version,
                "updated_at": at,
            },
        )
        return grant

    async def renew_lease(
        self, workflow_id: str, owner: str, lease_seconds: float
    ) -> datetime | None:
        record = self._kept(workflow_id)
        if record is None or record.lease_owner != owner:
            return None
        expires = now() + timedelta(seconds=lease_seconds)
        self._change(workflow_id, {"lease_expires_at": expires})
        return expires

    async def release_lease(self, workflow_id: str, owner: str) -> bool:
        record = self._kept(workflow_id)
        if record is None or record.lease_owner != owner:
            return False
        self._change(workflow_id, {"lease_owner": None, "lease_expires_at": None})
        return True

    async def get_expired_leases(
        self, stale_threshold_seconds: float, limit: int = 100
    ) -> list[WorkflowRecord]:
        at = now()
        cutoff = at - timedelta(seconds=stale_threshold_seconds)
        found: list[WorkflowRecord] = []
        for workflow_id in list(self._workflow_ids()):
            record = self._kept(workflow_id)
            if (
                record is not None
                and record.lease_owner is not None
                and record.lease_expires_at is not None
                and record.lease_expires_at <= at
                and record.status in _RUNNING
                and record.updated_at is not None
                and record.updated_at < cutoff
                and workflow_id not in self._heartbeats
            ):
                found.append(record)
        found.sort(key=lambda record: record.updated_at or at)
        loaded = [await self.load_workflow(record.id) for record in found[:limit]]
        return [record for record in loaded if record is not None]

    @abstractmethod
    def _workflow_ids(self) -> list[str]:
        """Every kept workflow's id."""
