"""The PostgreSQL persistence provider, on an asyncpg connection pool."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ruvon.errors import PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence import _rows, _sql
from ruvon.implementations.persistence._migrations import migrate_postgres
from ruvon.implementations.persistence._pg_group_commit import (
    Commit,
    GroupCommit,
    Outcome,
    batch_statement,
)
from ruvon.implementations.persistence._pg_statements import (
    BATCH_CHECK,
    commit_sql,
    create_sql,
    value_columns,
)
from ruvon.implementations.persistence._provider import SQLProvider
from ruvon.implementations.persistence._sql_compensation import (
    compensation_rows,
    pg_commit_with_compensations,
)
from ruvon.implementations.persistence._sql_leases import COMMIT_CHECK, commit_refused
from ruvon.implementations.persistence._sql_recovery import GuardedWrite, pg_guarded_write
from ruvon.providers.persistence import AuditEvent, WorkflowCommit, WorkflowRecord
from ruvon.serialization import loads, serialize

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "The PostgreSQL provider needs asyncpg: pip install 'ruvon-sdk[postgres]'"
    ) from exc

__all__ = ["PostgresPersistenceProvider"]

T = TypeVar("T")

_D = _sql.POSTGRES
_S = _sql.Statements.for_dialect(_D)

_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,  # e.g. "connection was closed in the middle of operation"
    asyncpg.exceptions.OperatorInterventionError,  # shutdown, crash, "starting up"
    asyncpg.InterfaceError,  # "connection is closed"
    # A connection that received the server's "terminating connection" notice while idle is
    # left in an error state: its next statement fails with this before anything is sent.
    asyncpg.exceptions.InternalClientError,
)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is what a server restart (or a broken network) looks like to a
    statement — the server could not be reached, or the connection broke — rather than the
    statement failing on its own: worth trying again on a new connection (a commit recognises
    its own write by its token if the first try went through)."""
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed"; its subclasses (a value the driver cannot encode, a
        # configuration or feature problem) are the statement's own.
        return type(exc) is asyncpg.InterfaceError
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):  # a timeout or cancel
        return False
    return isinstance(exc, _CONNECTION_LOST)


_NEVER_SENT: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,
    asyncpg.CannotConnectNowError,  # "the database system is shutting down / starting up"
)
"""Connection-lost errors that can only come from opening a connection: nothing was sent."""
_COMMIT_RETRY_SECONDS = 10.0
_BATCH_FAILURES: tuple[type[BaseException], ...] = (PersistenceError, *_DRIVER_ERRORS)
_GROUP_MAX_BATCH = 64
_GROUP_CONCURRENCY = 2
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _affected(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 1`` or ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


def _jsonb_out(value: Any) -> str:
    # The provider passes JSON already serialized; anything else is serialized here.
    return value if isinstance(value, str) else serialize(value)


async def _init_connection(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_out, decoder=loads, schema="pg_catalog", format="text"
    )


async def _keep_session(conn: Any) -> None:
    """Pool reset: nothing to undo.

    The provider never changes session state (no SET, LISTEN, cursors or session locks), and
    asyncpg still rolls back a transaction left open. The default reset would cost one more
    round trip on every release, doubling the cost of a commit.
    """


def _env_override(name: str, value: T, default: T, parse: Callable[[str], T]) -> T:
    """``value`` if it was passed explicitly (not the default), else ``$name``, else default."""
    if value != default:
        return value
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid value.") from None


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _where(db_url: str) -> str:
    """host:port/database of a connection URL, for messages (never the password)."""
    try:
        parts = urlsplit(db_url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid database URL>"
    database = parts.path.lstrip("/")
    return f"{host}{port}/{database}" if database else f"{host}{port}"


class PostgresPersistenceProvider(SQLProvider):
    """Stores workflows in PostgreSQL through an asyncpg connection pool (:attr:`pool`).

    A step commit is one statement, hence one round trip: a versioned UPDATE whose RETURNING
    row feeds the inserts of its audit, metric and log entries (data-modifying CTEs), so the
    entries are written only if the version matched. JSON columns are JSONB; timestamps come
    from the database clock.

    **Group commit** (``group_commit=True``, the default): concurrent ``commit_workflow`` calls
    of different workflows are written together, by one statement (one transaction) per batch:
    an ``UPDATE ... FROM unnest(...)`` of every row whose version matches, plus the entries of
    exactly the rows it updated. Each caller returns only after its batch has committed, with
    its own outcome: its new version, or :class:`ConcurrencyConflictError` /
    :class:`WorkflowNotFoundError` for it alone (nothing of it written; a second query, only
    then, tells which). At most ``group_commit_concurrency`` batches are written at a time; the
    commits arriving meanwhile form the next ones, so a lone commit is written at once (with
    the single-commit statement) and batches grow only with load. Two commits of the same
    workflow never share a batch, nor are written at the same time: the later one waits for
    the earlier one's outcome. If a batch statement fails as a whole (a value PostgreSQL
    rejects, a lost connection, a deadlock with another process), its commits are retried one
    by one with the single-commit statement, so each caller gets its own error. A batch waits
    for its slowest row, e.g. one locked by another transaction.

    A caller cancelled while its commit is queued drops it (nothing is written); one cancelled
    while its batch is being written may still have been committed, and the workflow object
    that made it then meets a :class:`ConcurrencyConflictError` on its next commit and must be
    reloaded. :meth:`close` first lets the queued commits be written (failing those still
    unwritten after a few command timeouts), then closes the pool. ``group_commit=False``
    writes every commit with its own statement, as it is called.

    **The server going away** (a restart, a crash, the network): a commit whose connection is
    lost is tried again on new connections for up to ``commit_retry_seconds`` — its commit
    token tells the retry whether the lost try went through, so it is applied once and never
    reported as a conflict with itself. Every other call fails at once with a
    :class:`PersistenceError` "Cannot reach PostgreSQL at ... to ..." (the caller retries;
    reads, creates and lease claims lose nothing by failing). The pool replaces the broken
    connections by itself: once the server is back, the same provider works again.

    Pool options can also be set through ``POSTGRES_POOL_MIN_SIZE``, ``POSTGRES_POOL_MAX_SIZE``,
    ``POSTGRES_POOL_COMMAND_TIMEOUT``, ``POSTGRES_POOL_MAX_QUERIES`` and
    ``POSTGRES_POOL_MAX_INACTIVE_LIFETIME``, and group commit through ``POSTGRES_GROUP_COMMIT``
    (``0``/``1``), ``POSTGRES_GROUP_COMMIT_MAX_BATCH`` and ``POSTGRES_GROUP_COMMIT_CONCURRENCY``.
    An argument passed with a value other than its default wins over the environment; an
    argument left at its default yields to it.

    Args:
        db_url: ``postgresql://user:password@host:port/database``.
        pool_min_size: Connections opened up front and kept. Default 10.
        pool_max_size: Most connections the pool opens. Default 50.
        pool_command_timeout: Seconds a statement (and a connection attempt) may take.
            Default 10.
        pool_max_queries: Queries after which a connection is replaced. Default 50,000.
        pool_max_inactive_lifetime: Seconds after which an idle connection is closed.
            Default 300.
        schema: A PostgreSQL schema to keep the tables in (created if missing) instead of the
            user's default ``search_path``; tests use it to get a fresh database each.
        group_commit: Write concurrent commits in shared batches (see above). Default True.
        group_commit_max_batch: Most commits in one batch. Default 64.
        group_commit_concurrency: Most batches written at the same time (each holds a pool
            connection while it is written). Default 2: on W5 (100 workflows in flight, a
            2-core machine) 1 gives ~4 % more throughput but at 10 in flight ~25 % less, and
            lets one slow batch (e.g. a row locked elsewhere) hold up every commit; more than
            2 makes batches smaller and costs database CPU. A larger server may want more.
        commit_retry_seconds: How long a commit whose connection was lost (the server
            restarting) is tried again on new connections before it fails; its token makes
            the retry safe. Default 10; 0 fails at once.
    """

    dialect = _D
    statements = _S

    def __init__(
        self,
        db_url: str,
        *,
        pool_min_size: int = 10,
        pool_max_size: int = 50,
        pool_command_timeout: float = 10,
        pool_max_queries: int = 50000,
        pool_max_inactive_lifetime: float = 300,
        schema: str | None = None,
        group_commit: bool = True,
        group_commit_max_batch: int = _GROUP_MAX_BATCH,
        group_commit_concurrency: int = _GROUP_CONCURRENCY,
        commit_retry_seconds: float = _COMMIT_RETRY_SECONDS,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"Invalid PostgreSQL schema name {schema!r}.")
        self.db_url = db_url
        self.schema = schema
        self.pool_min_size = _env_override("POSTGRES_POOL_MIN_SIZE", pool_min_size, 10, int)
        self.pool_max_size = _env_override("POSTGRES_POOL_MAX_SIZE", pool_max_size, 50, int)
        self.pool_command_timeout = _env_override(
            "POSTGRES_POOL_COMMAND_TIMEOUT", pool_command_timeout, 10, float
        )
        self.pool_max_queries = _env_override(
            "POSTGRES_POOL_MAX_QUERIES", pool_max_queries, 50000, int
        )
        self.pool_max_inactive_lifetime = _env_override(
            "POSTGRES_POOL_MAX_INACTIVE_LIFETIME", pool_max_inactive_lifetime, 300, float
        )
        self.group_commit = _env_override("POSTGRES_GROUP_COMMIT", group_commit, True, _flag)
        self.group_commit_max_batch = _env_override(
            "POSTGRES_GROUP_COMMIT_MAX_BATCH", group_commit_max_batch, _GROUP_MAX_BATCH, int
        )
        self.group_commit_concurrency = _env_override(
            "POSTGRES_GROUP_COMMIT_CONCURRENCY", group_commit_concurrency, _GROUP_CONCURRENCY, int
        )
        if self.group_commit_max_batch < 1 or self.group_commit_concurrency < 1:
            raise ValueError("group_commit_max_batch and group_commit_concurrency must be >= 1.")
        if commit_retry_seconds < 0:
            raise ValueError(f"commit_retry_seconds must be >= 0, got {commit_retry_seconds!r}")
        self._commit_retry_seconds = float(commit_retry_seconds)
        self.pool: Any = None
        """The asyncpg pool while initialized, else ``None``."""
        self._where = _where(db_url)
        self._init_lock = asyncio.Lock()
        self._group: GroupCommit | None = None
        self._close_timeout = 3 * max(self.pool_command_timeout, 1.0)
        """Seconds close() lets queued commits be written before it fails them."""

    async def initialize(self) -> None:
        """Create the pool and apply missing migrations. Idempotent."""
        async with self._init_lock:
            if self.pool is not None:
                return
            quoted = None if self.schema is None else f'"{self.schema}"'
            try:
                pool = await asyncpg.create_pool(
                    self.db_url,
                    min_size=min(self.pool_min_size, self.pool_max_size),
                    max_size=self.pool_max_size,
                    command_timeout=self.pool_command_timeout,
                    max_queries=self.pool_max_queries,
                    max_inactive_connection_lifetime=self.pool_max_inactive_lifetime,
                    timeout=self.pool_command_timeout,
                    init=_init_connection,
                    reset=_keep_session,
                    server_settings={} if quoted is None else {"search_path": quoted},
                )
            except _DRIVER_ERRORS as exc:
                raise self._error(exc, "connect") from None
            try:
                async with pool.acquire() as conn:
                    await migrate_postgres(conn, quoted)
            except BaseException as exc:
                pool.terminate()
                if isinstance(exc, _DRIVER_ERRORS):
                    raise self._error(exc, "migrate the schema") from None
                raise
            self.pool = pool
            if self.group_commit:
                self._group = GroupCommit(
                    self._write_batch,
                    self._where,
                    self.group_commit_max_batch,
                    self.group_commit_concurrency,
                )

    async def close(self) -> None:
        """Write or fail the queued commits, then close the pool; ``initialize`` may follow."""
        group, self._group = self._group, None
        if group is not None:
            # Commits made from now on bypass the batcher while the pool is still open.
            await group.close(timeout=self._close_timeout)
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await pool.close()
            except _DRIVER_ERRORS:
                pool.terminate()

    def _pool(self) -> Any:
        pool = self.pool
        if pool is None:
            raise PersistenceError(
                f"PostgreSQL provider for {self._where} is not initialized; "
                "call initialize() first."
            )
        return pool

    def _error(self, exc: BaseException, action: str) -> PersistenceError:
        """The error a caller sees for a driver error: "Cannot reach PostgreSQL ..." when the
        server could not be reached or the connection was lost (see :func:`_connection_lost`;
        e.g. the server restarting), else "PostgreSQL ... failed to ..."."""
        if _connection_lost(exc) or isinstance(exc, asyncio.TimeoutError):
            return PersistenceError(
                f"Cannot reach PostgreSQL at {self._where} to {action}: {_sql.describe(exc)}"
            )
        return PersistenceError(
            f"PostgreSQL at {self._where} failed to {action}: {_sql.describe(exc)}"
        )

    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        try:
            rows: list[Sequence[Any]] = await self._pool().fetch(sql, *args)
        except _DRIVER_ERRORS as exc:
            raise self._error(exc, action) from None
        return rows

    async def _fetch_write(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        # One statement is one transaction; the task claim locks its row FOR UPDATE SKIP LOCKED.
        return await self._fetch(sql, args, action)

    async def _execute(
        self, sql: str, args: Sequence[Any], action: str, *, workflow_id: str | None = None
    ) -> int:
        try:
            status = await self._pool().execute(sql, *args)
        except asyncpg.ForeignKeyViolationError as exc:
            if workflow_id is None:
                raise self._error(exc, action) from None
            raise WorkflowNotFoundError(workflow_id) from None
        except _DRIVER_ERRORS as exc:
            raise self._error(exc, action) from None
        return _affected(status)

    async def _guarded_write(self, write: GuardedWrite) -> bool:
        # One transaction on one connection, outside group commit (recoveries are rare).
        try:
            return await pg_guarded_write(self._pool(), write)
        except _DRIVER_ERRORS as exc:
            raise self._error(exc, write.action) from None

    # -- the two writes done the PostgreSQL way: one statement each ------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one statement; see the Protocol."""
        pool = self._pool()
        args = _rows.insert_workflow_args(record, _D)
        statement_args = args + value_columns(_rows.audit_rows(record.id, audit))
        statement = create_sql(bool(audit))
        # A workflow holding the key may be deleted between our insert and our read: retry.
        for _attempt in range(3):
            try:
                row = await pool.fetchrow(statement, *statement_args)
                if row is not None:
                    return _rows.created_record(record, args, row[0], row[1])
                existing = await pool.fetchrow(_S.select_workflow_by_key, record.idempotency_key)
            except asyncpg.IntegrityConstraintViolationError as exc:
                detail = f"{exc} {getattr(exc, 'constraint_name', '') or ''}".strip()
                raise _sql.create_conflict(record, detail) from None
            except _DRIVER_ERRORS as exc:
                raise self._error(exc, f"create workflow '{record.id}'") from None
            if existing is not None:
                return _rows.workflow_from_row(existing, _D)
        raise PersistenceError(
            f"Cannot create workflow '{record.id}': its idempotency key "
            f"'{record.idempotency_key}' keeps changing hands."
        )

    async def commit_workflow(self, commit: WorkflowCommit) -> int:
        """Write the update and the entries in one transaction if the version still matches:
        alone, or with concurrent commits of other workflows (group commit)."""
        self._pool()
        workflow_id = commit.update.workflow_id
        audit, metrics, logs = commit.audit, commit.metrics, commit.logs
        job = Commit(
            workflow_id,
            commit.expected_version,
            _rows.update_workflow_args(commit, _D),
            _rows.audit_rows(workflow_id, audit) if audit else [],
            _rows.metric_rows(workflow_id, metrics) if metrics else [],
            _rows.log_rows(workflow_id, logs) if logs else [],
        )
        if commit.compensations:  # a saga's rollback: its log entries in the same transaction
            return await self._commit_one(job, compensation_rows(workflow_id, commit.compensations))
        group = self._group
        if group is None:
            return await self._commit_one(job)
        return await group.commit(job)

    async def _commit_one(
        self,
        commit: Commit,
        compensations: Sequence[tuple[Any, ...]] = (),
        *,
        maybe_sent: bool = False,
    ) -> int:
        """One commit, one statement (and the inserts of its ``compensations``, if any, in the
        same transaction).

        A connection lost on the way (the server restarting) is tried again on a new
        connection for up to ``commit_retry_seconds``: the row's commit token tells whether the
        lost try went through, so a commit is never applied twice nor reported as a conflict
        with itself. After that, the error says the server cannot be reached, and whether the
        commit may have been written (``maybe_sent``: an earlier try, e.g. the batch it was
        part of, may have reached the server).
        """
        workflow_id = commit.workflow_id
        args = list(commit.args)
        token, holder = args[_rows.COMMIT_TOKEN_ARG], args[-1]
        for rows in (commit.audit, commit.metrics, commit.logs):
            if rows:
                args += value_columns(rows)
        statement = commit_sql(bool(commit.audit), bool(commit.metrics), bool(commit.logs))
        deadline = asyncio.get_running_loop().time() + self._commit_retry_seconds
        pause = 0.05
        while True:
            try:
                pool = self._pool()
                version: int | None
                if compensations:
                    version = await pg_commit_with_compensations(
                        pool, statement, args, compensations
                    )
                else:
                    version = await pool.fetchval(statement, *args)
                if version is not None:
                    return version
                # The rare path: find out why nothing matched (or whether a lost try did).
                found = await pool.fetchrow(COMMIT_CHECK, workflow_id)
                break
            except _DRIVER_ERRORS as exc:
                if not _connection_lost(exc):
                    raise self._error(exc, f"commit workflow '{workflow_id}'") from None
                maybe_sent = maybe_sent or not isinstance(exc, _NEVER_SENT)
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise self._error_now(commit, exc, maybe_sent) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
        outcome = commit_refused(workflow_id, commit.expected_version, token, holder, found, _D)
        if isinstance(outcome, int):
            return outcome
        raise outcome

    def _error_now(self, commit: Commit, exc: BaseException, maybe_sent: bool) -> PersistenceError:
        """The error of a commit given up on: the server stayed unreachable. Whether a try may
        have reached the server before its connection broke decides what the caller is told."""
        where = (
            f"Cannot reach PostgreSQL at {self._where} to commit workflow "
            f"'{commit.workflow_id}' (tried for {self._commit_retry_seconds:g} s; last "
            f"{_sql.describe(exc)}); "
        )
        if maybe_sent:
            outcome = (
                "a try may have reached the server before its connection broke, so the "
                "commit may or may not have been written. Reload the workflow (it shows "
                "whether the step was committed) before driving it on."
            )
        else:
            outcome = (
                "the step's outcome was not written. Reload the workflow and run the step again."
            )
        return PersistenceError(where + outcome)

    async def _settle_one(self, commit: Commit, *, maybe_sent: bool = False) -> None:
        outcome: Outcome
        try:
            outcome = await self._commit_one(commit, maybe_sent=maybe_sent)
        except Exception as exc:  # translated errors, and whatever else: the caller's to see
            outcome = exc
        commit.settle(outcome)

    async def _write_batch(self, batch: list[Commit]) -> None:
        """Write a batch of commits of distinct workflows; settle every one of them."""
        if len(batch) == 1:
            await self._settle_one(batch[0])
            return
        # Rows are locked in id order, like every batch of every process (fewer deadlocks).
        batch.sort(key=lambda commit: commit.workflow_id)
        statement, args = batch_statement(batch)
        try:
            pool = self._pool()
            rows = await pool.fetch(statement, *args)
        except _BATCH_FAILURES as exc:
            # The statement failed as a whole (rolled back, or its outcome is unknown): commit
            # one by one, so that each caller gets its own outcome (a bad value fails only its
            # commit; one that did go through is recognised by its token).
            sent = _connection_lost(exc) and not isinstance(exc, _NEVER_SENT)
            await asyncio.gather(*(self._settle_one(c, maybe_sent=sent) for c in batch))
            return
        versions: dict[str, int] = {row[0]: row[1] for row in rows}
        missing: list[Commit] = []
        for commit in batch:
            version = versions.get(commit.workflow_id)
            if version is None:
                missing.append(commit)
            else:
                commit.settle(version)
        if not missing:
            return
        # The rare path: these wrote nothing; find out why.
        try:
            found = await pool.fetch(BATCH_CHECK, [commit.workflow_id for commit in missing])
        except _DRIVER_ERRORS as exc:
            for commit in missing:
                commit.settle(self._error(exc, f"commit workflow '{commit.workflow_id}'"))
            return
        rows = {row[0]: row[1:] for row in found}
        for commit in missing:
            holder = commit.args[-1]
            commit.settle(
                commit_refused(
                    commit.workflow_id,
                    commit.expected_version,
                    None,  # this statement's outcome is known: nothing of it was written
                    holder,
                    rows.get(commit.workflow_id),
                    _D,
                )
            )
