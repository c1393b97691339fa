"""The SQLite persistence provider: a durable store in one file, no server needed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
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


def _clocked(sql: str) -> str:
    """``sql`` with ``now()`` turned into one more parameter, numbered after its own.

    The shared statements call ``now()``, which SQLite runs as a Python function: the database
    thread would have to take the GIL back inside every such statement. The write path binds
    the transaction's time as a parameter instead (the caller appends it to the arguments).
    """
    last = max(int(number) for number in re.findall(r"\?(\d+)", sql))
    return sql.replace("now()", f"?{last + 1}")


# The statements of the two batched writes; each takes the transaction's time last.
_INSERT_WORKFLOW = _clocked(_S.insert_workflow)
_UPDATE_WORKFLOW = _clocked(_S.update_workflow)
_INSERT_AUDIT = _clocked(_S.insert_audit)
_INSERT_METRIC = _clocked(_S.insert_metric)
_INSERT_LOG = _clocked(_S.insert_log)


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
        self._thread: _DatabaseThread | None = None
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
            await self._submit_to(thread, _Stop())
            thread.join()  # it is returning: its last act was to release us

    # -- the database thread ---------------------------------------------------------------

    async def _submit(self, job: _Job, *, connect: bool = False) -> Any:
        """Hand ``job`` to the database thread (started if needed) and wait for its outcome."""
        thread = self._thread
        if thread is None:
            if not (connect or self._auto_init):
                raise _not_initialized(self._db_path)
            thread = self._thread = _DatabaseThread(
                self._db_path,
                timeout=self._timeout,
                synchronous=self._synchronous,
                auto_init=self._auto_init,
                max_batch=self._max_batch,
            )
            # A provider dropped without close() still closes its connection and thread.
            self._finalizer = weakref.finalize(self, thread.stop, None)
            thread.start()
        return await self._submit_to(thread, job)

    @staticmethod
    async def _submit_to(thread: _DatabaseThread, job: _Job) -> Any:
        loop = asyncio.get_running_loop()
        job.loop = loop
        future = job.future = loop.create_future()
        if isinstance(job, _Stop):
            thread.stop(job)
        else:
            thread.put(job)
        return await future

    async def _call(
        self, work: Callable[[sqlite3.Connection], T], action: str, *, connect: bool = False
    ) -> T:
        """Run ``work`` alone on the database thread and wait for it without blocking the loop."""
        result: T = await self._submit(_Call(work, action, connect), connect=connect)
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

    # -- the two writes, batched -----------------------------------------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one transaction; see the Protocol."""
        args = _rows.insert_workflow_args(record, _D)
        args.append(None)  # the transaction's time, set on the database thread
        outcome = await self._submit(_Create(record, args, _rows.audit_rows(record.id, audit)))
        if isinstance(outcome, datetime):
            created_at = _sql.utc_or_none(record.created_at) or outcome
            return _rows.created_record(record, args, created_at, outcome)
        # The idempotency key is held by another workflow: that one, as stored.
        return _rows.workflow_from_row(outcome, _D)

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
        args.append(None)  # the transaction's time, set on the database thread
        job = _Commit(
            workflow_id,
            expected_version,
            args,
            _rows.audit_rows(workflow_id, audit) if audit else (),
            _rows.metric_rows(workflow_id, metrics) if metrics else (),
            _rows.log_rows(workflow_id, logs) if logs else (),
        )
        version: int = await self._submit(job)
        return version


def _not_initialized(db_path: str) -> PersistenceError:
    return PersistenceError(
        f"SQLite provider for '{db_path}' is not initialized; call initialize() first."
    )


# -- jobs: what the event loop hands to the database thread ----------------------------------
#
# The thread reports each job's outcome as a value or as an exception instance (which the
# caller then raises); a job's work never returns an exception as a value.


class _Job:
    """Work for the database thread, and the future its caller awaits (on ``loop``)."""

    __slots__ = ("future", "loop")

    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None

    def __init__(self) -> None:
        self.future = self.loop = None

    def action(self) -> str:
        """What the job does, for error messages ("failed to <action>")."""
        raise NotImplementedError


class _Call(_Job):
    """Any work on the connection, run alone (it opens its own transaction if it writes)."""

    __slots__ = ("connect", "what", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any], what: str, connect: bool) -> None:
        super().__init__()
        self.work, self.what, self.connect = work, what, connect

    def action(self) -> str:
        return self.what


class _Stop(_Job):
    """Close the connection and end the thread, after every job queued before."""

    __slots__ = ()

    def action(self) -> str:
        return "close the database"


class _Write(_Job):
    """A write that may share its transaction with other writes (group commit)."""

    __slots__ = ()

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        """Do the write in the open transaction whose time is ``moment`` (``now`` as text).

        A rejected write (stale version, missing workflow, taken id) writes nothing and
        returns its error; an SQLite error is raised and spoils the whole transaction.
        """
        raise NotImplementedError


class _Commit(_Write):
    """Outcome: the new row version."""

    __slots__ = ("args", "audit", "expected_version", "logs", "metrics", "workflow_id")

    def __init__(
        self,
        workflow_id: str,
        expected_version: int,
        args: list[Any],
        audit: Sequence[tuple[Any, ...]],
        metrics: Sequence[tuple[Any, ...]],
        logs: Sequence[tuple[Any, ...]],
    ) -> None:
        super().__init__()
        self.workflow_id, self.expected_version, self.args = workflow_id, expected_version, args
        self.audit, self.metrics, self.logs = audit, metrics, logs

    def action(self) -> str:
        return f"commit workflow '{self.workflow_id}'"

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        args = self.args
        args[-1] = now
        if cur.execute(_UPDATE_WORKFLOW, args).rowcount == 0:
            if cur.execute(_S.workflow_version, (self.workflow_id,)).fetchone() is None:
                return WorkflowNotFoundError(self.workflow_id)
            return ConcurrencyConflictError(self.workflow_id, self.expected_version)
        if self.audit:
            cur.executemany(_INSERT_AUDIT, [(*row, now) for row in self.audit])
        if self.metrics:
            cur.executemany(_INSERT_METRIC, [(*row, now) for row in self.metrics])
        if self.logs:
            cur.executemany(_INSERT_LOG, [(*row, now) for row in self.logs])
        return self.expected_version + 1


class _Create(_Write):
    """Outcome: the transaction's time (the workflow was inserted), or the row of the
    workflow that holds the idempotency key already."""

    __slots__ = ("args", "audit", "record")

    def __init__(
        self, record: WorkflowRecord, args: list[Any], audit: Sequence[tuple[Any, ...]]
    ) -> None:
        super().__init__()
        self.record, self.args, self.audit = record, args, audit

    def action(self) -> str:
        return f"create workflow '{self.record.id}'"

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        key = self.record.idempotency_key
        if key is not None:
            # Under the write lock: nobody can take the key between this check and the insert.
            row = cur.execute(_S.select_workflow_by_key, (key,)).fetchone()
            if row is not None:
                return row
        args = self.args
        args[-1] = now
        try:
            cur.execute(_INSERT_WORKFLOW, args)
        except sqlite3.IntegrityError as exc:
            # SQLite undid the failed statement only; the transaction goes on without it.
            return _sql.create_conflict(self.record, str(exc))
        if self.audit:
            cur.executemany(_INSERT_AUDIT, [(*row, now) for row in self.audit])
        return moment


def _abandoned(job: _Job) -> bool:
    """Whether the caller has given up on ``job`` (read from the thread: a stale answer only
    means the job runs although nobody waits for it, as it would had it started already)."""
    return job.future is not None and job.future.cancelled()


def _deliver(outcomes: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """On the event loop: settle the futures of a batch (a caller may have given up)."""
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


# -- the thread ------------------------------------------------------------------------------


class _DatabaseThread:
    """The thread that owns the connection and runs every job, in the order they came.

    Each time it is free it takes everything queued. Consecutive writes (up to ``max_batch``)
    go into one transaction; any other job runs alone. The callers of a batch are released
    together, with one ``call_soon_threadsafe`` per event loop.
    """

    def __init__(
        self,
        db_path: str,
        *,
        timeout: float,
        synchronous: str,
        auto_init: bool,
        max_batch: int,
    ) -> None:
        self._db_path = db_path
        self._timeout = timeout
        self._synchronous = synchronous
        self._auto_init = auto_init
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders put() against stop()
        self._stopping = False
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        self._now: str | None = None
        self._thread = threading.Thread(target=self._main, name="ruvon-sqlite", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def put(self, job: _Job) -> None:
        with self._lock:
            if self._stopping:
                raise PersistenceError(
                    f"SQLite provider for '{self._db_path}' is closing; cannot {job.action()}."
                )
            self._queue.put(job)

    def stop(self, job: _Stop | None) -> None:
        """Queue the end of the thread (``job`` settles once the connection is closed)."""
        with self._lock:
            if self._stopping:
                if job is not None:
                    raise PersistenceError(f"SQLite provider for '{self._db_path}' is closing.")
                return
            self._stopping = True
            self._queue.put(_Stop() if job is None else job)

    # -- on the thread ---------------------------------------------------------------------

    def _main(self) -> None:
        backlog: deque[_Job] = deque()
        take = self._queue.get_nowait
        while True:
            if not backlog:
                backlog.append(self._queue.get())
            try:
                while True:
                    backlog.append(take())
            except queue.Empty:
                pass
            job = backlog.popleft()
            jobs: list[_Job] = [job]
            try:
                if isinstance(job, _Write):
                    batch = self._batch(job, backlog)
                    jobs = list(batch)
                    outcomes = self._write_batch(batch) if batch else []
                elif isinstance(job, _Call):
                    outcomes = [self._call(job)]
                else:  # _Stop, the last job: put() has refused new ones since it came
                    self._settle(jobs, [self._close()])
                    return
            except BaseException as exc:  # never leave a caller waiting
                outcomes = [exc] * len(jobs)
            self._settle(jobs, outcomes)

    def _batch(self, first: _Write, backlog: deque[_Job]) -> list[_Write]:
        """``first`` and the writes queued right after it, up to ``max_batch``; writes whose
        callers have given up (cancelled) are dropped unwritten."""
        batch = [first]
        taken = 1
        while backlog and taken < self._max_batch:
            job = backlog[0]
            if not isinstance(job, _Write):
                break
            backlog.popleft()
            batch.append(job)
            taken += 1
        return [job for job in batch if not _abandoned(job)]

    @staticmethod
    def _settle(jobs: Sequence[_Job], outcomes: Sequence[Any]) -> None:
        """Release the callers of ``jobs``: one hop to each event loop involved."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.loop is not None and job.future is not None:
                by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, delivered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_deliver, delivered)

    def _failure(self, exc: BaseException, job: _Job) -> BaseException:
        """The error a caller sees for ``exc`` (driver errors become PersistenceError)."""
        if isinstance(exc, (sqlite3.Error, OSError)):
            return PersistenceError(
                f"SQLite database '{self._db_path}' failed to {job.action()}: {_sql.describe(exc)}"
            )
        return exc

    def _connection(self, connect: bool) -> tuple[sqlite3.Connection, sqlite3.Cursor]:
        conn, cursor = self._conn, self._cursor
        if conn is None or cursor is None:
            if not (connect or self._auto_init):
                raise _not_initialized(self._db_path)
            conn = self._connect()
            cursor = conn.cursor()
            self._conn, self._cursor = conn, cursor
        return conn, cursor

    def _connect(self) -> sqlite3.Connection:
        in_memory = self._db_path in (":memory:", "")
        if not in_memory:
            Path(self._db_path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the module never opens transactions behind our back; every
        # transaction here is explicit.
        conn = sqlite3.connect(self._db_path, timeout=self._timeout, isolation_level=None)
        try:
            if not in_memory:
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

    def _close(self) -> Any:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is None:
            return None
        try:
            conn.close()
        except Exception as exc:
            return self._failure(exc, _Stop())
        return None

    def _timestamp(self) -> str:
        """SQL ``now()``: one timestamp per job, like PostgreSQL's transaction time."""
        if self._now is None:
            self._now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        return self._now

    def _call(self, job: _Call) -> Any:
        if _abandoned(job):
            return None
        try:
            conn, _ = self._connection(job.connect)
            self._now = None
            return job.work(conn)
        except Exception as exc:
            return self._failure(exc, job)

    def _write_batch(self, batch: list[_Write]) -> list[Any]:
        """Apply ``batch`` in one transaction; the outcome of each write, in order."""
        try:
            conn, cursor = self._connection(False)
            moment = datetime.now(timezone.utc)
            now = moment.isoformat(timespec="microseconds")
            # Waiting for the write lock fails the whole batch, without retries one by one.
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            return [self._failure(exc, job) for job in batch]
        try:
            outcomes = [job.apply(cursor, now, moment) for job in batch]
            conn.execute("COMMIT")
        except Exception as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is broken; every write will say so
            if len(batch) == 1:
                return [self._failure(exc, batch[0])]
            # One write spoilt the transaction: each on its own, so that only it fails.
            return [self._write_batch([job])[0] for job in batch]
        return outcomes
