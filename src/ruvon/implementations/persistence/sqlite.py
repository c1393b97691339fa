"""The SQLite persistence provider: a durable store in one file, no server needed."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from ruvon.implementations.persistence import _rows, _sql
from ruvon.implementations.persistence._migrations import migrate_sqlite
from ruvon.implementations.persistence._provider import SQLProvider
from ruvon.implementations.persistence._sql_compensation import (
    SQLiteCompensatingCommit,
    compensation_rows,
)
from ruvon.implementations.persistence._sql_leases import grant_from_row
from ruvon.implementations.persistence._sql_recovery import GuardedWrite, sqlite_guarded_write
from ruvon.implementations.persistence._sqlite_writer import (
    Call,
    Claim,
    Commit,
    Create,
    DatabaseThread,
    Job,
    Stop,
    not_initialized,
)
from ruvon.providers.persistence import AuditEvent, LeaseGrant, WorkflowCommit, WorkflowRecord

__all__ = ["SQLitePersistenceProvider"]

T = TypeVar("T")

_D = _sql.SQLITE
_S = _sql.Statements.for_dialect(_D)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SQLitePersistenceProvider(SQLProvider):
    """Stores workflows in an SQLite database file (or ``":memory:"``).

    All SQL runs on one dedicated thread that owns the connection, so the event loop is never
    blocked; a call costs one hand-over to that thread and back. Writers take the database's
    write lock up front (``BEGIN IMMEDIATE``), so several processes may share a file; a writer
    waits up to ``timeout`` seconds for another.

    **Group commit.** Step commits (``commit_workflow``) and ``create_workflow`` calls that are
    waiting for the thread at the same time are written in one transaction: each time the
    thread is free it takes every such write queued (up to ``group_commit_max_batch``), applies
    them in the order they were called, commits once, and only then releases their callers. A
    lone write is not delayed. Each write keeps its own outcome: one with a stale version (or
    for a missing workflow, or a taken id) writes nothing and fails alone while the others
    commit. If the transaction as a whole fails (an SQLite error), it is rolled back and its
    writes are retried one transaction each, so a bad write fails alone. Durability is
    unchanged: no caller continues before the transaction holding its write is committed.

    Files use WAL journaling. ``synchronous="NORMAL"`` (the default) is durable against
    application crashes in WAL mode: a committed transaction survives the process being killed.
    Only the last transactions before a power failure or an OS crash may be lost (the database
    stays consistent). ``synchronous="FULL"`` syncs the WAL on every commit and closes that gap,
    at the cost of one fsync per commit (per group of commits with group commit).

    Args:
        db_path: The database file; its parent directory is created if missing.
            ``":memory:"`` keeps everything in memory for the provider's lifetime.
        timeout: Seconds to wait for another writer's lock (``busy_timeout``). Default 5.
        synchronous: ``PRAGMA synchronous``: OFF, NORMAL (default), FULL or EXTRA.
        auto_init: Connect and migrate on first use if :meth:`initialize` was not called.
            Default True.
        group_commit: Write concurrent ``commit_workflow`` and ``create_workflow`` calls in
            shared transactions (see above). Default True; False gives every call a
            transaction of its own.
        group_commit_max_batch: The most writes in one shared transaction. Default 128.
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
        group_commit: bool = True,
        group_commit_max_batch: int = 128,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}.")
        if group_commit_max_batch < 1:
            raise ValueError("group_commit_max_batch must be at least 1.")
        self._db_path = os.fspath(db_path)
        self._timeout = timeout
        self._synchronous = synchronous.upper()
        self._auto_init = auto_init
        self._max_batch = group_commit_max_batch if group_commit else 1
        self._thread: DatabaseThread | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def db_path(self) -> str:
        """The database file path, or ``":memory:"``."""
        return self._db_path

    async def initialize(self) -> None:
        """Open the database and apply missing migrations. Idempotent."""
        await self._call(lambda conn: None, "open the database", connect=True)

    async def close(self) -> None:
        """Finish the writes already queued, close the connection and stop the database thread;
        ``initialize`` may follow."""
        thread, self._thread = self._thread, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if thread is not None:
            await self._submit_to(thread, Stop())
            thread.join()  # it is returning: its last act was to release us

    # -- the database thread ---------------------------------------------------------------

    async def _submit(self, job: Job, *, connect: bool = False) -> Any:
        """Hand ``job`` to the database thread (started if needed) and wait for its outcome."""
        thread = self._thread
        if thread is None:
            if not (connect or self._auto_init):
                raise not_initialized(self._db_path)
            thread = self._thread = DatabaseThread(
                self._db_path,
                # Not a closure over self: the thread must not keep the provider alive.
                connect=functools.partial(
                    _connect, self._db_path, timeout=self._timeout, synchronous=self._synchronous
                ),
                auto_init=self._auto_init,
                max_batch=self._max_batch,
            )
            # A provider dropped without close() still closes its connection and thread.
            self._finalizer = weakref.finalize(self, thread.stop, None)
            thread.start()
        return await self._submit_to(thread, job)

    @staticmethod
    async def _submit_to(thread: DatabaseThread, job: Job) -> Any:
        loop = asyncio.get_running_loop()
        job.loop = loop
        future = job.future = loop.create_future()
        if isinstance(job, Stop):
            thread.stop(job)
        else:
            thread.put(job)
        return await future

    async def _call(
        self, work: Callable[[sqlite3.Connection], T], action: str, *, connect: bool = False
    ) -> T:
        """Run ``work`` alone on the database thread and wait for it without blocking the loop."""
        result: T = await self._submit(Call(work, action, connect), connect=connect)
        return result

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

    async def _fetch_write(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        # BEGIN IMMEDIATE on the one database thread: the statement (e.g. a task claim) reads
        # and writes under the write lock, so no other connection can interleave.
        def work(conn: sqlite3.Connection) -> list[Sequence[Any]]:
            return self._write(conn, lambda: conn.execute(sql, args).fetchall())

        return await self._call(work, action)

    async def _guarded_write(self, write: GuardedWrite) -> bool:
        # Alone on the database thread, in its own BEGIN IMMEDIATE transaction.
        return await self._call(lambda conn: sqlite_guarded_write(conn, write), write.action)

    # -- the two writes, batched -----------------------------------------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one transaction; see the Protocol."""
        args = _rows.insert_workflow_args(record, _D)
        args.append(None)  # the transaction's time, set on the database thread
        outcome = await self._submit(Create(record, args, _rows.audit_rows(record.id, audit)))
        if isinstance(outcome, datetime):
            created_at = _sql.utc_or_none(record.created_at) or outcome
            return _rows.created_record(record, args, created_at, outcome)
        # The idempotency key is held by another workflow: that one, as stored.
        return _rows.workflow_from_row(outcome, _D)

    async def claim_lease(
        self, workflow_id: str, expected_version: int, owner: str, lease_seconds: float
    ) -> LeaseGrant:
        """Make ``owner`` the run's driver (see the Protocol), batched with the commits queued
        with it (group commit): a claim is one more write of W5's path."""
        row = await self._submit(Claim(workflow_id, expected_version, owner, lease_seconds))
        return grant_from_row(row, _D)

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        """Write the update and the entries in one transaction if the version still matches."""
        workflow_id = commit.update.workflow_id
        args = _rows.update_workflow_args(commit, _D)
        args.append(None)  # the transaction's time, set on the database thread
        audit, metrics, logs = commit.audit, commit.metrics, commit.logs
        job = Commit(
            workflow_id,
            commit.expected_version,
            args,
            _rows.audit_rows(workflow_id, audit) if audit else (),
            _rows.metric_rows(workflow_id, metrics) if metrics else (),
            _rows.log_rows(workflow_id, logs) if logs else (),
        )
        if commit.compensations:  # a saga's rollback: its log entries in the same transaction
            rows = compensation_rows(workflow_id, commit.compensations)
            job = SQLiteCompensatingCommit(job, rows)
        version: int = await self._submit(job)
        return version


def _connect(
    db_path: str, now: Callable[[], str], *, timeout: float, synchronous: str
) -> sqlite3.Connection:
    """Open ``db_path`` (WAL, foreign keys, the lock timeout) and apply missing migrations.

    Runs on the database thread; ``now`` serves as SQL ``now()``.
    """
    in_memory = db_path in (":memory:", "")
    if not in_memory:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the module never opens transactions behind our back; every
    # transaction here is explicit.
    conn = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
    try:
        if not in_memory:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.create_function("now", 0, now)
        migrate_sqlite(conn)
    except BaseException:
        conn.close()
        raise
    return conn
