"""The SQLite provider's database thread: the one owner of the connection, and group commit.

The event loop hands it jobs (:class:`Call` for any work, :class:`Commit` and :class:`Create`
for the two batched writes, :class:`Stop`); it runs them in order, puts consecutive writes in
one transaction, and settles each caller's future on its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ruvon.errors import PersistenceError
from ruvon.implementations.persistence import _sql
from ruvon.implementations.persistence._sql_leases import (
    CLAIM,
    COMMIT_CHECK,
    claim_refused,
    commit_refused,
)
from ruvon.providers.persistence import WorkflowRecord

__all__ = ["Call", "Claim", "Commit", "Create", "DatabaseThread", "Job", "Stop", "not_initialized"]

_S = _sql.Statements.for_dialect(_sql.SQLITE)


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
_INSERT_METRIC = _clocked(_S.insert_metric)


def _values(target: str, columns: int) -> str:
    """A plain ``INSERT ... VALUES`` of ``columns`` parameters into ``target``.

    The shared entry inserts select the workflow row (so an entry of a missing workflow writes
    nothing); inside a commit or a create the row is known to be there (the versioned UPDATE
    matched, or the INSERT just wrote it), and the extra lookup is a noticeable part of a
    step's commit on W5.
    """
    return f"INSERT INTO {target} VALUES ({', '.join(f'?{n}' for n in range(1, columns + 1))})"


# workflow id, the entry's columns, the time.
_INSERT_AUDIT = _values(_sql.AUDIT_INSERT, len(_sql.AUDIT_COLUMNS) + 2)
_INSERT_LOG = _values(_sql.LOG_INSERT, len(_sql.LOG_COLUMNS) + 2)
_COMMIT_CHECK = _clocked(_sql.SQLITE.sql(COMMIT_CHECK))
# The claim's end is a parameter ($4), set from the transaction's time on the thread.
_CLAIM = _clocked(_sql.SQLITE.sql(CLAIM.format(until="$4")))


def not_initialized(db_path: str) -> PersistenceError:
    return PersistenceError(
        f"SQLite provider for '{db_path}' is not initialized; call initialize() first."
    )


# -- jobs: what the event loop hands to the database thread ----------------------------------
#
# The thread reports each job's outcome as a value or as an exception instance (which the
# caller then raises); a job's work never returns an exception as a value.


class Job:
    """Work for the database thread, and the future its caller awaits (on ``loop``)."""

    __slots__ = ("future", "loop")

    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None

    def __init__(self) -> None:
        self.future = self.loop = None

    def action(self) -> str:
        """What the job does, for error messages ("failed to <action>")."""
        raise NotImplementedError


class Call(Job):
    """Any work on the connection, run alone (it opens its own transaction if it writes)."""

    __slots__ = ("connect", "what", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any], what: str, connect: bool) -> None:
        super().__init__()
        self.work, self.what, self.connect = work, what, connect

    def action(self) -> str:
        return self.what


class Stop(Job):
    """Close the connection and end the thread, after every job queued before."""

    __slots__ = ()

    def action(self) -> str:
        return "close the database"


class _Write(Job):
    """A write that may share its transaction with other writes (group commit)."""

    __slots__ = ()

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        """Do the write in the open transaction whose time is ``moment`` (``now`` as text).

        A rejected write (stale version, missing workflow, taken id) writes nothing and
        returns its error; an SQLite error is raised and spoils the whole transaction.
        """
        raise NotImplementedError


class Commit(_Write):
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
            row = cur.execute(_COMMIT_CHECK, (self.workflow_id, now)).fetchone()
            # The holder is the parameter before the time; the token is never this one's
            # (a refused SQLite write is known to have written nothing).
            return commit_refused(
                self.workflow_id, self.expected_version, None, args[-2], row, _sql.SQLITE
            )
        if self.audit:
            cur.executemany(_INSERT_AUDIT, [(*row, now) for row in self.audit])
        if self.metrics:
            cur.executemany(_INSERT_METRIC, [(*row, now) for row in self.metrics])
        if self.logs:
            cur.executemany(_INSERT_LOG, [(*row, now) for row in self.logs])
        return self.expected_version + 1


class Claim(_Write):
    """A lease claim (it shares its transaction with the commits around it). Outcome: the
    claim's ``RETURNING`` row, or its refusal."""

    __slots__ = ("expected_version", "owner", "seconds", "workflow_id")

    def __init__(self, workflow_id: str, expected_version: int, owner: str, seconds: float) -> None:
        super().__init__()
        self.workflow_id, self.expected_version = workflow_id, expected_version
        self.owner, self.seconds = owner, seconds

    def action(self) -> str:
        return f"claim the lease of workflow '{self.workflow_id}'"

    def apply(self, cur: sqlite3.Cursor, now: str, moment: datetime) -> Any:
        until = _sql.SQLITE.time_out(moment + timedelta(seconds=self.seconds))
        args = (self.workflow_id, self.expected_version, self.owner, until, now)
        row = cur.execute(_CLAIM, args).fetchone()
        if row is not None:
            return row
        found = cur.execute(_COMMIT_CHECK, (self.workflow_id, now)).fetchone()
        return claim_refused(
            self.workflow_id, self.expected_version, self.owner, found, _sql.SQLITE
        )


class Create(_Write):
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


def _abandoned(job: Job) -> bool:
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


class DatabaseThread:
    """The thread that owns the connection and runs every job, in the order they came.

    Each time it is free it takes everything queued. Consecutive writes (up to ``max_batch``)
    go into one transaction; any other job runs alone. The callers of a batch are released
    together, with one ``call_soon_threadsafe`` per event loop. ``connect`` opens the connection
    (on this thread, when first needed), given the function to serve as SQL ``now()``.
    """

    def __init__(
        self,
        db_path: str,
        *,
        connect: Callable[[Callable[[], str]], sqlite3.Connection],
        auto_init: bool,
        max_batch: int,
    ) -> None:
        self._db_path = db_path
        self._connect = connect
        self._auto_init = auto_init
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
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

    def put(self, job: Job) -> None:
        with self._lock:
            if self._stopping:
                raise PersistenceError(
                    f"SQLite provider for '{self._db_path}' is closing; cannot {job.action()}."
                )
            self._queue.put(job)

    def stop(self, job: Stop | None) -> None:
        """Queue the end of the thread (``job`` settles once the connection is closed)."""
        with self._lock:
            if self._stopping:
                if job is not None:
                    raise PersistenceError(f"SQLite provider for '{self._db_path}' is closing.")
                return
            self._stopping = True
            self._queue.put(Stop() if job is None else job)

    # -- on the thread ---------------------------------------------------------------------

    def _main(self) -> None:
        backlog: deque[Job] = deque()
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
            jobs: list[Job] = [job]
            try:
                if isinstance(job, _Write):
                    batch = self._batch(job, backlog)
                    jobs = list(batch)
                    outcomes = self._write_batch(batch) if batch else []
                elif isinstance(job, Call):
                    outcomes = [self._call(job)]
                else:  # Stop, the last job: put() has refused new ones since it came
                    self._settle(jobs, [self._close()])
                    return
            except BaseException as exc:  # never leave a caller waiting
                outcomes = [exc] * len(jobs)
            self._settle(jobs, outcomes)

    def _batch(self, first: _Write, backlog: deque[Job]) -> list[_Write]:
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
    def _settle(jobs: Sequence[Job], outcomes: Sequence[Any]) -> None:
        """Release the callers of ``jobs``: one hop to each event loop involved."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.loop is not None and job.future is not None:
                by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, delivered in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_deliver, delivered)

    def _failure(self, exc: BaseException, job: Job) -> BaseException:
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
                raise not_initialized(self._db_path)
            conn = self._connect(self._timestamp)
            cursor = conn.cursor()
            self._conn, self._cursor = conn, cursor
        return conn, cursor

    def _close(self) -> Any:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is None:
            return None
        try:
            conn.close()
        except Exception as exc:
            return self._failure(exc, Stop())
        return None

    def _timestamp(self) -> str:
        """SQL ``now()``: one timestamp per job, like PostgreSQL's transaction time."""
        if self._now is None:
            self._now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        return self._now

    def _call(self, job: Call) -> Any:
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
