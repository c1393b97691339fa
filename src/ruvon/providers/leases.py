"""The part of the persistence contract that leases need: who drives a run right now.

Whoever drives a run (a ``next_step`` call, a worker, a server request) first *claims* its
lease: one conditional write that names the owner and sets an expiry on the store's clock, and
bumps the row's version, so that every object loaded before the claim fails its next commit.
Every commit then checks the lease (``WorkflowCommit.lease_holder``): it goes through only if
the lease is free, expired or the committer's own, and it writes the lease anew
(``WorkflowUpdate.lease_owner`` / ``lease_expires_at``: kept while the call goes on, released by
its last commit). A step that outlives the heartbeat interval has its lease renewed with its
heartbeat (:meth:`LeaseStore.renew_lease`), so the renewal of short steps costs nothing.

A lease that expired while its run is still ACTIVE, with no heartbeat and no commit for the
zombie scanner's threshold, is a driver that died before its first heartbeat
(:meth:`LeaseStore.get_expired_leases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ruvon.providers.records import WorkflowRecord

__all__ = ["LeaseGrant", "LeaseStore"]


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """A claimed lease: the row's new version and times."""

    version: int
    expires_at: datetime
    """Until when the lease holds, on the store's clock."""
    updated_at: datetime
    """The row's ``updated_at`` after the claim (the store's clock at the claim)."""


@runtime_checkable
class LeaseStore(Protocol):
    """Claiming, renewing and finding leases."""

    async def claim_lease(
        self, workflow_id: str, expected_version: int, owner: str, lease_seconds: float
    ) -> LeaseGrant:
        """Make ``owner`` the run's driver for ``lease_seconds`` from now (the store's clock)
        and bump its version, in one conditional write: the row must be at
        ``expected_version`` and its lease free, expired or ``owner``'s already.

        Raises:
            WorkflowNotFoundError: no such workflow.
            WorkflowLeasedError: another owner's lease is live (naming it and its expiry).
            ConcurrencyConflictError: the row moved on since ``expected_version``.
        """
        ...

    async def renew_lease(
        self, workflow_id: str, owner: str, lease_seconds: float
    ) -> datetime | None:
        """Extend ``owner``'s lease to ``lease_seconds`` from now, if ``owner`` still holds it
        (the version and ``updated_at`` do not change); the new expiry, or ``None`` when
        ``owner`` no longer holds it."""
        ...

    async def release_lease(self, workflow_id: str, owner: str) -> bool:
        """Drop ``owner``'s lease if it still holds it (the version does not change); whether
        it did. For a call that ends without a commit that released it."""
        ...

    async def get_expired_leases(
        self, stale_threshold_seconds: float, limit: int = 100
    ) -> list[WorkflowRecord]:
        """ACTIVE or PENDING_ASYNC runs whose lease has expired, that have no heartbeat row
        and whose row has not changed for ``stale_threshold_seconds``: their driver stopped
        before it wrote a heartbeat. Oldest change first."""
        ...
