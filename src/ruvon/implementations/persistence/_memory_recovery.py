"""The ``RecoveryStore`` part of the memory provider: the conditional writes of crash recovery.

Each write checks its conditions and then calls the provider's own ``commit_workflow`` and
heartbeat methods, none of which awaits anything: the whole write runs without giving the event
loop away, so it is atomic like every method of the memory store.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from ruvon.implementations.persistence._memory_entries import json_or_none
from ruvon.providers.persistence import AuditEvent, Heartbeat, WorkflowCommit, WorkflowRecord
from ruvon.serialization import loads

__all__ = ["MemoryRecovery"]


class MemoryRecovery(ABC):
    """``recover_stale_workflow``, ``claim_workflow`` and ``latest_audit_event`` (not public)."""

    _heartbeats: dict[str, tuple[Heartbeat, str | None]]
    _audit: dict[str, list[tuple[AuditEvent, str | None, int, datetime]]]

    @abstractmethod
    async def load_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The stored workflow."""

    @abstractmethod
    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        """The versioned commit."""

    @abstractmethod
    async def upsert_heartbeat(
        self,
        workflow_id: str,
        worker_id: str,
        current_step: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create or refresh a heartbeat."""

    async def _at_version(self, commit: WorkflowCommit) -> bool:
        stored = await self.load_workflow(commit.update.workflow_id)
        return stored is not None and stored.version == commit.expected_version

    async def recover_stale_workflow(self, commit: WorkflowCommit, heartbeat_at: datetime) -> bool:
        workflow_id = commit.update.workflow_id
        kept = self._heartbeats.get(workflow_id)
        if kept is None or kept[0].last_heartbeat != heartbeat_at:
            return False
        if not await self._at_version(commit):
            return False
        await self.commit_workflow(commit)  # a value the codec rejects raises: nothing written
        del self._heartbeats[workflow_id]
        return True

    async def claim_workflow(
        self,
        commit: WorkflowCommit,
        worker_id: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        update = commit.update
        json_or_none(metadata)  # a value the codec rejects raises before anything is written
        if update.workflow_id in self._heartbeats or not await self._at_version(commit):
            return False
        await self.commit_workflow(commit)
        await self.upsert_heartbeat(update.workflow_id, worker_id, update.current_step, metadata)
        return True

    async def latest_audit_event(self, workflow_id: str) -> AuditEvent | None:
        entries = self._audit.get(workflow_id)
        if not entries:
            return None
        event, data, entry_id, at = entries[-1]
        return dataclasses.replace(
            event,
            data=None if data is None else loads(data),
            workflow_id=workflow_id,
            id=entry_id,
            timestamp=at,
        )
