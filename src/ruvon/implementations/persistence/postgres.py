"""The PostgreSQL persistence provider, on an asyncpg connection pool."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence import _rows, _sql
from ruvon.implementations.persistence._migrations import migrate_postgres
from ruvon.implementations.persistence._provider import SQLProvider
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    WorkflowRecord,
    WorkflowUpdate,
)
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
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# -- the one-statement commit --------------------------------------------------------------

# Per entry kind: (CTE alias, insert target, (column, array element type, select expression)).
# The columns are those of _sql.*_COLUMNS in the same order: the unnest() arrays are the
# columns of the rows _rows.*_rows builds. {owner} is the CTE holding the workflow row.
_ENTRY_GROUPS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "a",
        _sql.AUDIT_INSERT,
        (
            ("event_type", "text", "e.event_type"),
            ("step_name", "text", "e.step_name"),
            ("old_status", "text", "e.old_status"),
            ("new_status", "text", "e.new_status"),
            ("event_data", "text", "e.event_data::jsonb"),
            ("user_id", "text", "e.user_id"),
            ("worker_id", "text", "e.worker_id"),
            ("execution_duration_ms", "float8", "e.execution_duration_ms"),
        ),
    ),
    (
        "m",
        _sql.METRIC_INSERT,
        (
            ("workflow_type", "text", "COALESCE(e.workflow_type, {owner}.workflow_type)"),
            ("step_name", "text", "e.step_name"),
            ("metric_name", "text", "e.metric_name"),
            ("metric_value", "float8", "e.metric_value"),
            ("unit", "text", "e.unit"),
            ("tags", "text", "e.tags::jsonb"),
        ),
    ),
    (
        "l",
        _sql.LOG_INSERT,
        (
            ("step_name", "text", "e.step_name"),
            ("log_level", "text", "e.log_level"),
            ("message", "text", "e.message"),
            ("metadata", "text", "e.metadata::jsonb"),
        ),
    ),
)


def _entry_ctes(owner: str, first_param: int, present: Sequence[bool]) -> tuple[list[str], int]:
    """CTEs inserting the entry arrays for the workflow row of CTE ``owner``."""
    ctes: list[str] = []
    param = first_param
    for (alias, target, columns), wanted in zip(_ENTRY_GROUPS, present, strict=True):
        if not wanted:
            continue
        arrays = []
        for _column, kind, _expr in columns:
            arrays.append(f"${param}::{kind}[]")
            param += 1
        names = ", ".join(column for column, _kind, _expr in columns)
        exprs = ", ".join(expr.format(owner=owner) for _column, _kind, expr in columns)
        ctes.append(
            f"{alias} AS (INSERT INTO {target} SELECT $1, {exprs}, now() "
            f"FROM {owner}, unnest({', '.join(arrays)}) WITH ORDINALITY AS e({names}, ord) "
            "ORDER BY e.ord)"
        )
    return ctes, param


@cache
def _commit_sql(audit: bool, metrics: bool, logs: bool) -> str:
    """The commit as one statement: a versioned UPDATE plus the entry inserts it gates.

    Entry kinds without entries are left out of the text, so their parameters are not sent;
    each of the eight variants is prepared once per connection.
    """
    ctes, _ = _entry_ctes("u", 13, (audit, metrics, logs))
    with_entries = "".join(f", {cte}" for cte in ctes)
    return (
        f"WITH u AS ({_sql.UPDATE_WORKFLOW} RETURNING version, workflow_type)"
        f"{with_entries} SELECT version FROM u"
    )


@cache
def _create_sql(audit: bool) -> str:
    """The create as one statement: the row (unless its idempotency key is taken) + audit."""
    ctes, _ = _entry_ctes("w", 23, (audit, False, False))
    with_entries = "".join(f", {cte}" for cte in ctes)
    return (
        f"WITH w AS ({_S.insert_workflow} ON CONFLICT (idempotency_key) DO NOTHING "
        f"RETURNING created_at, updated_at){with_entries} "
        "SELECT created_at, updated_at FROM w"
    )


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows of ``(workflow_id, *values)`` → one list per value column (the unnest arrays)."""
    return [list(column) for column in zip(*rows, strict=True)][1:]


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
        raise ValueError(f"{name}={raw!r} is not a valid number.") from None


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

    Pool options can also be set through ``POSTGRES_POOL_MIN_SIZE``, ``POSTGRES_POOL_MAX_SIZE``,
    ``POSTGRES_POOL_COMMAND_TIMEOUT``, ``POSTGRES_POOL_MAX_QUERIES`` and
    ``POSTGRES_POOL_MAX_INACTIVE_LIFETIME``. An argument passed with a value other than its
    default wins over the environment; an argument left at its default yields to it.

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
        self.pool: Any = None
        """The asyncpg pool while initialized, else ``None``."""
        self._where = _where(db_url)
        self._init_lock = asyncio.Lock()

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

    async def close(self) -> None:
        """Close the pool; ``initialize`` may follow."""
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
        if isinstance(exc, _UNREACHABLE):
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

    # -- the two writes done the PostgreSQL way: one statement each ------------------------

    async def create_workflow(
        self, record: WorkflowRecord, audit: Sequence[AuditEvent] = ()
    ) -> WorkflowRecord:
        """Insert a workflow and its audit entries in one statement; see the Protocol."""
        pool = self._pool()
        args = _rows.insert_workflow_args(record, _D)
        statement_args = args + _columns(_rows.audit_rows(record.id, audit))
        statement = _create_sql(bool(audit))
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

    async def commit_workflow(
        self,
        update: WorkflowUpdate,
        *,
        expected_version: int,
        audit: Sequence[AuditEvent] = (),
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogEntry] = (),
    ) -> int:
        """Write ``update`` and the entries in one statement if the version still matches."""
        pool = self._pool()
        workflow_id = update.workflow_id
        args = _rows.update_workflow_args(update, expected_version, _D)
        if audit:
            args += _columns(_rows.audit_rows(workflow_id, audit))
        if metrics:
            args += _columns(_rows.metric_rows(workflow_id, metrics))
        if logs:
            args += _columns(_rows.log_rows(workflow_id, logs))
        statement = _commit_sql(bool(audit), bool(metrics), bool(logs))
        try:
            version: int | None = await pool.fetchval(statement, *args)
            if version is not None:
                return version
            # The rare path: find out why nothing matched.
            found = await pool.fetchval(_S.workflow_version, workflow_id)
        except _DRIVER_ERRORS as exc:
            raise self._error(exc, f"commit workflow '{workflow_id}'") from None
        if found is None:
            raise WorkflowNotFoundError(workflow_id)
        raise ConcurrencyConflictError(workflow_id, expected_version)
