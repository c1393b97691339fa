"""The SQLite persistence provider: a durable store in one file, no server needed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence import _rows, _sql
from ruvon.implementations.persistence._migrations import migrate_sqlite
from ruvon.implementations.persistence._provider import SQLProvider
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    WorkflowRecord,
    WorkflowUpdate,
)

__all__ = ["SQLitePersistenceProvider"]

T = TypeVar("T")

_D = _sql.SQLITE
_S = _sql.Statements.for_dialect(_D)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLitePersistenceProvider(SQLProvider):
    """Stores workflows in an SQLite database file (or ``":memory:"``).

    All SQL runs on one dedicated thread that owns the connection: each method hands that
    thread one function doing all of its SQL, including the whole transaction, so the event
    loop is never blocked and a step commit costs one thread hop. Writers take the database's
    write lock up front (``BEGIN IMMEDIATE``), so several processes may share a file; a writer
    waits up to ``timeout`` seconds for another.

    Files use WAL journaling. ``synchronous="NORMAL"`` (the default) is durable against
    application crashes in WAL mode: a committed transaction survives the process being killed.
    Only the last transactions before a power failure or an OS crash may be lost (the database
    stays consistent). ``synchronous="FULL"`` syncs the WAL on every commit and closes that gap,
    at the cost of one fsync per commit.

    Args:
        db_path: The database file; its parent directory is created if missing.
            ``":memory:"`` keeps everything in memory for the provider's lifetime.
        timeout: Seconds to wait for another writer's lock (``busy_timeout``). Default 5.
        synchronous: ``PRAGMA synchronous``: OFF, NORMAL (default), FULL or EXTRA.
        auto_init: Connect and migrate on first use if :meth:`initialize` was not called.
            Default True.
    """

    dialect = _D
    statements = _S

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "ruvon.db",
        *,
        timeout: float = 5.0,
        synchronous: str = "NORMAL",
        auto_init: bool = True,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}.")
        self._db_path = os.fspath(db_path)
        self._timeout = timeout
        self._synchronous = synchronous.upper()
        self._auto_init = auto_init
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._now: str | None = None

    @property
    def db_path(self) -> str:
        """The database file path, or ``":memory:"``."""
        return self._db_path

    @property
    def _in_memory(self) -> bool:
        return self._db_path in (":memory:", "")

    async def initialize(self) -> None:
        """Open the database and apply missing migrations. Idempotent."""
        await self._call(lambda conn: None, "open the database", connect=True)

    async def close(self) -> None:
        """Close the connection and stop the database thread; ``initialize`` may follow."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)

    # -- the database thread ---------------------------------------------------------------

    async def _call(
        self, work: Callable[[sqlite3.Connection], T], action: str, *, connect: bool = False
    ) -> T:
        """Run ``work`` on the database thread and wait for it without blocking the loop."""
        if self._executor is None:
            if not (connect or self._auto_init):
                raise self._not_initialized()
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ruvon-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, work, action, connect)

    def _run(self, work: Callable[[sqlite3.Connection], T], action: str, connect: bool) -> T:
        """On the database thread: connect if needed, run ``work``, translate driver errors."""
        try:
            conn = self._conn
            if conn is None:
                if not (connect or self._auto_init):
                    raise self._not_initialized()
                conn = self._conn = self._connect()
            self._now = None
            return work(conn)
        except (sqlite3.Error, OSError) as exc:
            raise PersistenceError(
                f"SQLite database '{self._db_path}' failed to {action}: {_sql.describe(exc)}"
            ) from None

    def _not_initialized(self) -> PersistenceError:
        return PersistenceError(
            f"SQLite provider for '{self._db_path}' is not initialized; call initialize() first."
        )

    def _connect(self) -> sqlite3.Connection:
        if not self._in_memory:
            Path(self._db_path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the module never opens transactions behind our back; every
        # transaction here is explicit.
        conn = sqlite3.connect(self._db_path, timeout=self._timeout, isolation_level=None)
        try:
            if not self._in_memory:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.create_function("now", 0, self._timestamp)
            migrate_sqlite(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _timestamp(self) -> str:
        """SQL ``now()``: one timestamp per operation, like PostgreSQL's transaction time."""
        if self._now is None:
            self._now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        return self._now

    @staticmethod
    def _write(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
        """Run ``work`` in one write transaction; roll back if it raises."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        return await self._call(lambda conn: conn.execute(sql, args).fetchall(), action)

    async def _execute(
        self, sql: str, args: Sequence[Any], action: str, *, workflow_id: str | None = None
    ) -> int:
        # Foreign keys cannot fail for a deleted workflow here: statements run one at a time.
        def work(conn: sqlite3.Connection) -> int:
            return self._write(conn, lambda: conn.execute(sql, args).rowcount)

        return await self._call(work, action)

    # -- the two writes done the SQLite way ------------------------------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one transaction; see the Protocol."""
        args = _rows.insert_workflow_args(record, _D)
        audit_args = _rows.audit_rows(record.id, audit)

        def insert(conn: sqlite3.Connection) -> Sequence[Any]:
            row: Sequence[Any] | None = None
            if record.idempotency_key is not None:
                # Under the write lock: nobody can take the key between this check and the insert.
                row = conn.execute(_S.select_workflow_by_key, (record.idempotency_key,)).fetchone()
            if row is None:
                try:
                    conn.execute(_S.insert_workflow, args)
                except sqlite3.IntegrityError as exc:
                    raise _sql.create_conflict(record, str(exc)) from None
                if audit_args:
                    conn.executemany(_S.insert_audit, audit_args)
                row = conn.execute(_S.select_workflow, (record.id,)).fetchone()
            assert row is not None
            return row

        row = await self._call(
            lambda conn: self._write(conn, lambda: insert(conn)),
            f"create workflow '{record.id}'",
        )
        return _rows.workflow_from_row(row, _D)

    async def commit_workflow(
        self,
        update: WorkflowUpdate,
        *,
        expected_version: int,
        audit: Sequence[AuditEvent] = (),
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogEntry] = (),
    ) -> int:
        """Write ``update`` and the entries in one transaction if the version still matches."""
        workflow_id = update.workflow_id
        args = _rows.update_workflow_args(update, expected_version, _D)
        entries = [
            (_S.insert_audit, _rows.audit_rows(workflow_id, audit)),
            (_S.insert_metric, _rows.metric_rows(workflow_id, metrics)),
            (_S.insert_log, _rows.log_rows(workflow_id, logs)),
        ]

        def commit(conn: sqlite3.Connection) -> int:
            if conn.execute(_S.update_workflow, args).rowcount == 0:
                if conn.execute(_S.workflow_version, (workflow_id,)).fetchone() is None:
                    raise WorkflowNotFoundError(workflow_id)
                raise ConcurrencyConflictError(workflow_id, expected_version)
            for sql, rows in entries:
                if rows:
                    conn.executemany(sql, rows)
            return expected_version + 1

        return await self._call(
            lambda conn: self._write(conn, lambda: commit(conn)),
            f"commit workflow '{workflow_id}'",
        )
