"""Leases on the SQL providers (the ``LeaseStore`` part), and how a commit that wrote nothing
is told apart: a missing workflow, another driver's live lease, a stale version — or a commit
that did go through although its caller never heard back (its token is the row's).

Every statement here is one statement, hence one transaction; the claim is the only one that
bumps the version. Times of leases are the database's (PostgreSQL's ``now()``; on SQLite the
writing process's clock, which every process on that file shares).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from ruvon.errors import (
    ConcurrencyConflictError,
    PersistenceError,
    WorkflowLeasedError,
    WorkflowNotFoundError,
)
from ruvon.implementations.persistence import _rows, _sql
from ruvon.implementations.persistence._columns import SELECT_WORKFLOW
from ruvon.models import WorkflowStatus
from ruvon.providers.persistence import LeaseGrant, WorkflowRecord

__all__ = [
    "CLAIM",
    "COMMIT_CHECK",
    "SQLLeases",
    "claim_refused",
    "commit_refused",
    "grant_from_row",
]

CLAIM = """UPDATE workflow_executions
SET lease_owner = $3::text, lease_expires_at = {until}, version = version + 1, updated_at = now()
WHERE id = $1 AND version = $2
  AND (lease_owner IS NULL OR lease_owner = $3::text OR lease_expires_at <= now())
RETURNING version, lease_expires_at, updated_at"""
"""The claim of ``$1`` at version ``$2`` by ``$3``; ``{until}``: the lease's end."""

_RENEW = """UPDATE workflow_executions SET lease_expires_at = {until}
WHERE id = $1 AND lease_owner = $2::text
RETURNING lease_expires_at"""

_RELEASE = """UPDATE workflow_executions SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2::text"""

COMMIT_CHECK = """SELECT version, lease_owner, lease_expires_at, commit_token,
    COALESCE(lease_expires_at > now(), FALSE)
FROM workflow_executions WHERE id = $1"""
"""Why a write of ``$1`` matched nothing: the row's version, lease (and whether it is live)
and last commit token (see :func:`commit_refused`)."""

_RUNNING = (WorkflowStatus.ACTIVE.value, WorkflowStatus.PENDING_ASYNC.value)

_EXPIRED = f"""{SELECT_WORKFLOW}
WHERE lease_owner IS NOT NULL AND lease_expires_at <= now()
  AND status IN ('{_RUNNING[0]}', '{_RUNNING[1]}')
  AND updated_at < {{cutoff}}
  AND NOT EXISTS (
    SELECT 1 FROM workflow_heartbeats h WHERE h.workflow_id = workflow_executions.id)
ORDER BY updated_at LIMIT $2"""


def commit_refused(
    workflow_id: str,
    expected_version: int,
    token: str | None,
    holder: str | None,
    row: Sequence[Any] | None,
    dialect: _sql.Dialect,
) -> int | PersistenceError:
    """The outcome of a write that matched no row, from the row as :data:`COMMIT_CHECK` read
    it: the new version if the row carries the write's own ``token`` one version on (it went
    through), else the error that says why it did not."""
    if row is None:
        return WorkflowNotFoundError(workflow_id)
    version, owner, expires, stored_token, live = row
    if token is not None and stored_token == token and version == expected_version + 1:
        return int(version)
    if version == expected_version and owner is not None and owner != holder and live:
        return WorkflowLeasedError(workflow_id, expected_version, owner, dialect.time_in(expires))
    return ConcurrencyConflictError(workflow_id, expected_version)


def grant_from_row(row: Sequence[Any], dialect: _sql.Dialect) -> LeaseGrant:
    """The :class:`LeaseGrant` of a claim's ``RETURNING`` row."""
    version, expires, updated = row
    return LeaseGrant(int(version), _time(dialect, expires), _time(dialect, updated))


def claim_refused(
    workflow_id: str,
    expected_version: int,
    owner: str,
    row: Sequence[Any] | None,
    dialect: _sql.Dialect,
) -> PersistenceError:
    """Why a claim by ``owner`` matched no row (the row as :data:`COMMIT_CHECK` read it)."""
    refusal = commit_refused(workflow_id, expected_version, None, owner, row, dialect)
    if isinstance(refusal, int):  # cannot happen without a token: a conflict if it did
        return ConcurrencyConflictError(workflow_id, expected_version)
    return refusal


class SQLLeases(ABC):
    """The ``LeaseStore`` part of the SQL providers (not part of the public API)."""

    dialect: ClassVar[_sql.Dialect]

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows of a query."""

    @abstractmethod
    async def _fetch_write(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows a write statement returned, in its own transaction."""

    @abstractmethod
    async def _execute(
        self, sql: str, args: Sequence[Any], action: str, *, workflow_id: str | None = None
    ) -> int:
        """Run one write statement; the rows it changed."""

    def _until(self, template: str, number: int) -> str:
        d = self.dialect
        return d.sql(template.format(until=d.lease_until.format(p=f"${number}")))

    async def claim_lease(
        self, workflow_id: str, expected_version: int, owner: str, lease_seconds: float
    ) -> LeaseGrant:
        """Make ``owner`` the run's driver; see the Protocol."""
        d = self.dialect
        action = f"claim the lease of workflow '{workflow_id}'"
        args = [workflow_id, expected_version, owner, d.lease_arg(lease_seconds)]
        rows = await self._fetch_write(self._until(CLAIM, 4), args, action)
        if rows:
            return grant_from_row(rows[0], d)
        found = await self._fetch(d.sql(COMMIT_CHECK), [workflow_id], action)
        raise claim_refused(workflow_id, expected_version, owner, found[0] if found else None, d)

    async def renew_lease(
        self, workflow_id: str, owner: str, lease_seconds: float
    ) -> datetime | None:
        """Extend ``owner``'s lease; see the Protocol."""
        d = self.dialect
        action = f"renew the lease of workflow '{workflow_id}'"
        args = [workflow_id, owner, d.lease_arg(lease_seconds)]
        rows = await self._fetch_write(self._until(_RENEW, 3), args, action)
        return _time(d, rows[0][0]) if rows else None

    async def release_lease(self, workflow_id: str, owner: str) -> bool:
        """Drop ``owner``'s lease; see the Protocol."""
        action = f"release the lease of workflow '{workflow_id}'"
        return await self._execute(self.dialect.sql(_RELEASE), [workflow_id, owner], action) > 0

    async def get_expired_leases(
        self, stale_threshold_seconds: float, limit: int = 100
    ) -> list[WorkflowRecord]:
        """Runs whose driver stopped before its first heartbeat; see the Protocol."""
        d = self.dialect
        sql = d.sql(_EXPIRED.format(cutoff=d.stale_cutoff))
        args = [d.stale_arg(stale_threshold_seconds), limit]
        rows = await self._fetch(sql, args, "read expired leases")
        return [_rows.workflow_from_row(row, d) for row in rows]


def _time(dialect: _sql.Dialect, value: Any) -> datetime:
    moment = dialect.time_in(value)
    assert moment is not None  # the statements return times they have just written
    return moment
