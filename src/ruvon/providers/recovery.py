"""The part of the persistence contract that crash recovery needs: conditional writes that tie a
workflow's row to its heartbeat row, so that of all the scanners and workers racing for a run
exactly one changes it (see :mod:`ruvon.zombie_scanner` and :mod:`ruvon.worker`).

Both writes are a :class:`~ruvon.providers.records.WorkflowCommit` (the row, its audit, metric and
log entries, exactly as ``commit_workflow`` writes them) plus a condition on, and a change of,
the workflow's heartbeat row, all in one transaction. They return whether they won; a loser
writes nothing and raises nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ruvon.providers.records import AuditEvent, WorkflowCommit

__all__ = ["RecoveryStore"]


@runtime_checkable
class RecoveryStore(Protocol):
    """Conditional writes for the zombie scanner and the worker."""

    async def recover_stale_workflow(self, commit: WorkflowCommit, heartbeat_at: datetime) -> bool:
        """Write ``commit`` and delete the workflow's heartbeat, in one transaction, if the
        heartbeat is still the one last written at ``heartbeat_at`` (as a stale-heartbeat scan
        returned it) and the row is still at ``commit.expected_version``.

        Returns False, writing nothing, when the heartbeat was refreshed or deleted since (the
        worker is alive, or its step ended), when the row moved on, or when another
        recoverer holds the heartbeat row right now (PostgreSQL: ``FOR UPDATE SKIP LOCKED``,
        so a second scanner skips the row instead of waiting for the first).
        """
        ...

    async def claim_workflow(
        self,
        commit: WorkflowCommit,
        worker_id: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Write ``commit`` and create the workflow's heartbeat (``worker_id``, the update's
        ``current_step``, ``metadata``), in one transaction, if the workflow has no heartbeat
        row and the row is still at ``commit.expected_version``.

        The heartbeat is the claimer's lease: it keeps it fresh while it drives the run
        (``ruvon.heartbeat.HeartbeatManager``) and deletes it when done; if the claimer dies,
        the heartbeat goes stale and the zombie scanner recovers the run. Returns False,
        writing nothing, when someone else's heartbeat exists or the row moved on.
        """
        ...

    async def latest_audit_event(self, workflow_id: str) -> AuditEvent | None:
        """The audit entry written last for the workflow (``None``: none, or no workflow)."""
        ...
