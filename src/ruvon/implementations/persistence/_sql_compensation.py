"""The compensation log of the SQL providers (the ``compensation_log`` table of 0001_init).

Entries normally arrive with a commit (``WorkflowCommit.compensations``) and are written in its
transaction: on SQLite by :class:`SQLiteCompensatingCommit`, a commit job of the database thread
that inserts them after the row's versioned UPDATE matched; on PostgreSQL by
:func:`pg_commit_with_compensations`, the one-statement commit and the inserts in one
transaction on one connection. Such commits are rare (one per compensation of a rollback), so
they skip PostgreSQL's group commit. :class:`SQLCompensationLog` reads the log and appends an
entry outside a commit, on the primitives each dialect provides (``_provider.SQLProvider``).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from ruvon.implementations.persistence import _sql
from ruvon.implementations.persistence._sqlite_writer import Commit
from ruvon.providers.persistence import CompensationEntry, check_compensation_action

__all__ = [
    "SQLCompensationLog",
    "SQLiteCompensatingCommit",
    "compensation_rows",
    "pg_commit_with_compensations",
]

_INSERT = """INSERT INTO compensation_log (execution_id, step_name, step_index, action_type,
    action_result, error_message, executed_by, state_before, state_after, executed_at)
SELECT id, $2::text, $3::int4, $4::text, $5::jsonb, $6::text, $7::text, $8::jsonb, $9::jsonb,
       now()
FROM workflow_executions WHERE id = $1"""
"""One entry of workflow ``$1`` (no row inserted: no such workflow)."""

_SELECT = """SELECT log_id, execution_id, step_name, step_index, action_type, action_result,
    error_message, executed_by, state_before, state_after, executed_at
FROM compensation_log WHERE execution_id = $1 ORDER BY log_id LIMIT $2"""

INSERT_POSTGRES = _INSERT
_INSERT_SQLITE = _sql.SQLITE.sql(_INSERT)
_INSERT_SQLITE_CLOCKED = _INSERT_SQLITE.replace("now()", "?10")
"""The insert of the commit job: the transaction's time bound as a tenth parameter (as the
database thread binds it for the other entries of a commit)."""


def compensation_rows(
    workflow_id: str, entries: Sequence[CompensationEntry]
) -> list[tuple[Any, ...]]:
    """Parameters of the insert, one tuple per entry (JSON values serialized here, so a value
    the codec rejects raises its ``TypeError`` before anything is written)."""
    rows: list[tuple[Any, ...]] = []
    for entry in entries:
        check_compensation_action(entry.action_type)
        rows.append(
            (
                workflow_id,
                entry.step_name,
                entry.step_index,
                entry.action_type,
                _sql.json_text(entry.action_result),
                entry.error_message,
                entry.executed_by,
                _sql.json_text(entry.state_before),
                _sql.json_text(entry.state_after),
            )
        )
    return rows


def _entry_from_row(row: Sequence[Any], dialect: _sql.Dialect) -> CompensationEntry:
    json_in = dialect.json_in
    return CompensationEntry(
        id=row[0],
        workflow_id=row[1],
        step_name=row[2],
        step_index=row[3],
        action_type=row[4],
        action_result=json_in(row[5]),
        error_message=row[6],
        executed_by=row[7],
        state_before=json_in(row[8]),
        state_after=json_in(row[9]),
        executed_at=dialect.time_in(row[10]),
    )


class SQLCompensationLog(ABC):
    """The ``CompensationLog`` part of the SQL providers (not part of the public API)."""

    dialect: ClassVar[_sql.Dialect]

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows of a query."""

    @abstractmethod
    async def _insert_for(self, workflow_id: str, sql: str, args: Sequence[Any]) -> None:
        """Run an ``INSERT ... SELECT ... WHERE id = $1``; no row: no such workflow."""

    async def log_compensation(self, workflow_id: str, entry: CompensationEntry) -> None:
        """Append one entry outside a commit."""
        args = compensation_rows(workflow_id, [entry])[0]
        await self._insert_for(workflow_id, self.dialect.sql(_INSERT), args)

    async def get_compensation_log(
        self, workflow_id: str, *, limit: int = 100
    ) -> list[CompensationEntry]:
        """The entries of a workflow in the order they were written."""
        rows = await self._fetch(
            self.dialect.sql(_SELECT),
            [workflow_id, max(limit, 0)],
            f"read the compensation log of '{workflow_id}'",
        )
        return [_entry_from_row(row, self.dialect) for row in rows]


class SQLiteCompensatingCommit(Commit):
    """A commit job of the SQLite database thread that also writes compensation-log entries,
    in the same transaction, only if the row's update matched."""

    __slots__ = ("compensations",)

    def __init__(self, commit: Commit, compensations: Sequence[tuple[Any, ...]]) -> None:
        super().__init__(
            commit.workflow_id,
            commit.expected_version,
            commit.args,
            commit.audit,
            commit.metrics,
            commit.logs,
        )
        self.compensations = compensations

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        outcome = super().apply(cur, now, moment)
        if not isinstance(outcome, BaseException):
            cur.executemany(_INSERT_SQLITE_CLOCKED, [(*row, now) for row in self.compensations])
        return outcome


async def pg_commit_with_compensations(
    pool: Any, statement: str, args: Sequence[Any], compensations: Sequence[tuple[Any, ...]]
) -> int | None:
    """Run PostgreSQL's one-statement commit and insert the compensation entries, in one
    transaction; the new version, or ``None`` when the commit matched no row (nothing is
    written)."""
    async with pool.acquire() as conn, conn.transaction():
        version: int | None = await conn.fetchval(statement, *args)
        if version is not None:
            await conn.executemany(INSERT_POSTGRES, compensations)
        return version
