"""Crash recovery's conditional writes on the SQL providers (the ``RecoveryStore`` part).

A recovery or a claim is one transaction of three parts, in this order:

1. the *guard*, a statement on the workflow's heartbeat row that must change exactly one row:
   delete the stale heartbeat the scanner read (``last_heartbeat`` still equal to what it read;
   on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so a second scanner skips the row another one is
   recovering instead of waiting for it), or insert the claimer's heartbeat
   (``ON CONFLICT DO NOTHING``: somebody else's heartbeat exists);
2. the commit's versioned UPDATE of the workflow row, which must match (the same statement
   ``commit_workflow`` runs);
3. the commit's audit, metric and log entries.

If 1 or 2 changes nothing, the transaction is rolled back and the write returns False. On SQLite
the transaction runs on the database thread under ``BEGIN IMMEDIATE`` (writers are serialized);
on PostgreSQL on one pooled connection. Both are rare writes, outside group commit.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ruvon.implementations.persistence import _rows, _sql
from ruvon.providers.persistence import AuditEvent, WorkflowCommit

__all__ = ["GuardedWrite", "SQLRecovery", "pg_guarded_write", "sqlite_guarded_write"]

_TAKE_STALE = """DELETE FROM workflow_heartbeats WHERE workflow_id = (
    SELECT workflow_id FROM workflow_heartbeats
    WHERE workflow_id = $1 AND last_heartbeat = $2::timestamptz{lock})"""
"""Remove the heartbeat of ``$1`` if it is still the one written at ``$2``."""

_TAKE_LEASE = """INSERT INTO workflow_heartbeats
    (workflow_id, worker_id, current_step, last_heartbeat, metadata)
VALUES ($1, $2::text, $3::text, now(), $4::jsonb)
ON CONFLICT (workflow_id) DO NOTHING"""
"""Create the heartbeat of ``$1`` unless it has one."""

_LATEST_AUDIT = f"""SELECT id, workflow_id, {", ".join(_sql.AUDIT_COLUMNS)}, timestamp
FROM workflow_audit_log WHERE workflow_id = $1 ORDER BY id DESC LIMIT 1"""


@dataclass(frozen=True, slots=True)
class GuardedWrite:
    """One recovery or claim, as statements of the provider's dialect."""

    action: str
    """What it does, for error messages ("failed to <action>")."""
    guard: tuple[str, Sequence[Any]]
    """The heartbeat statement that must change exactly one row, and its arguments."""
    update: tuple[str, Sequence[Any]]
    """The versioned UPDATE of the workflow row, and its arguments."""
    entries: tuple[tuple[str, Sequence[Sequence[Any]]], ...]
    """The audit, metric and log inserts, each with its rows."""


def sqlite_guarded_write(conn: sqlite3.Connection, write: GuardedWrite) -> bool:
    """Run ``write`` in one transaction on the SQLite database thread."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute(*write.guard).rowcount != 1 or conn.execute(*write.update).rowcount != 1:
            conn.execute("ROLLBACK")
            return False
        for sql, rows in write.entries:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


def _changed(status: str) -> int:
    """The row count of a command status such as ``DELETE 1``."""
    return int(status.rsplit(" ", 1)[-1])


async def pg_guarded_write(pool: Any, write: GuardedWrite) -> bool:
    """Run ``write`` in one transaction on a connection of the asyncpg ``pool``."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            guard_sql, guard_args = write.guard
            update_sql, update_args = write.update
            if (
                _changed(await conn.execute(guard_sql, *guard_args)) != 1
                or _changed(await conn.execute(update_sql, *update_args)) != 1
            ):
                await transaction.rollback()
                return False
            for sql, rows in write.entries:
                await conn.executemany(sql, rows)
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
        return True


class SQLRecovery(ABC):
    """The ``RecoveryStore`` part of the SQL providers (not part of the public API); each
    dialect runs a :class:`GuardedWrite` its own way (:meth:`_guarded_write`)."""

    dialect: ClassVar[_sql.Dialect]
    statements: ClassVar[_sql.Statements]

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows of a query."""

    @abstractmethod
    async def _guarded_write(self, write: GuardedWrite) -> bool:
        """Run ``write`` in one transaction; True if its guard and its update both matched."""

    def _recovery_write(
        self, commit: WorkflowCommit, guard: tuple[str, Sequence[Any]], action: str
    ) -> GuardedWrite:
        """The :class:`GuardedWrite` of ``commit`` under ``guard`` (every value is serialized
        here, so a value the codec rejects raises before anything is written)."""
        s = self.statements
        workflow_id = commit.update.workflow_id
        entries = (
            (s.insert_audit, _rows.audit_rows(workflow_id, commit.audit)),
            (s.insert_metric, _rows.metric_rows(workflow_id, commit.metrics)),
            (s.insert_log, _rows.log_rows(workflow_id, commit.logs)),
        )
        return GuardedWrite(
            action=action,
            guard=guard,
            update=(s.update_workflow, _rows.update_workflow_args(commit, self.dialect)),
            entries=tuple((sql, rows) for sql, rows in entries if rows),
        )

    async def recover_stale_workflow(self, commit: WorkflowCommit, heartbeat_at: datetime) -> bool:
        """Write ``commit`` and delete the stale heartbeat, if both are as read; see the
        Protocol."""
        d = self.dialect
        workflow_id = commit.update.workflow_id
        guard = (
            d.sql(_TAKE_STALE.format(lock=d.claim_lock)),
            [workflow_id, d.time_out(heartbeat_at)],
        )
        write = self._recovery_write(commit, guard, f"recover workflow '{workflow_id}'")
        return await self._guarded_write(write)

    async def claim_workflow(
        self,
        commit: WorkflowCommit,
        worker_id: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Write ``commit`` and create the claimer's heartbeat, if the workflow has none and
        its row is as read; see the Protocol."""
        update = commit.update
        args = [update.workflow_id, worker_id, update.current_step, _sql.json_text(metadata)]
        guard = (self.dialect.sql(_TAKE_LEASE), args)
        write = self._recovery_write(commit, guard, f"claim workflow '{update.workflow_id}'")
        return await self._guarded_write(write)

    async def latest_audit_event(self, workflow_id: str) -> AuditEvent | None:
        """The audit entry written last for the workflow."""
        rows = await self._fetch(
            self.dialect.sql(_LATEST_AUDIT),
            [workflow_id],
            f"read the audit log of '{workflow_id}'",
        )
        return _rows.audit_from_row(rows[0], self.dialect) if rows else None
