"""Administering a Ruvon database by its URL: the migrations it has, applying the missing ones,
what it holds, and whether its schema is the one the migration files describe.

Every function takes a database URL as :mod:`ruvon.settings` reads them (``sqlite:///path``,
``postgresql://user@host/db``, ``memory://``; default: ``RUVON_DATABASE_URL``, else the SQLite
file ``ruvon.db``) and opens a connection of its own for the call. It does not open a
persistence provider, because a provider applies the missing migrations as it opens. Only
:func:`migrate` writes.

- :func:`migration_status`: the applied and the pending migrations (:class:`MigrationStatus`).
- :func:`migrate`: apply the pending ones, each in its own transaction with its bookkeeping row,
  exactly as a provider does when it starts (so concurrent callers are safe); ``dry_run`` only
  lists them.
- :func:`database_stats`: kind, location, size, rows per Ruvon table, workflows per status
  (:class:`DatabaseStats`).
- :func:`validate_schema`: compare every table, column (type and nullability) and index that
  the migration files create with the database, and the migrations applied with the files. The
  result is a list of problems, one sentence each; an empty list means the schema matches. The
  reference is built by running the files on an empty scratch database of the same dialect
  (SQLite ``:memory:``; PostgreSQL temporary tables in a transaction that is rolled back).

A PostgreSQL URL may choose its schema with ``?search_path=<schema>`` (asyncpg passes it to the
server); :func:`migrate` creates that schema if it is missing. ``memory://`` (and SQLite's
``:memory:``) keep nothing between processes: the status and the stats say so, :func:`migrate`
does nothing and :func:`validate_schema` finds nothing wrong.

Errors reaching or reading the database raise :class:`~ruvon.errors.PersistenceError`, with the
location but never the password. A URL with an unknown scheme raises ``ValueError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from ruvon.errors import PersistenceError
from ruvon.implementations.persistence import _catalog
from ruvon.implementations.persistence._catalog import Catalog
from ruvon.implementations.persistence._migrations import (
    Migration,
    Recorded,
    load_migrations,
    migrate_postgres,
    migrate_sqlite,
    recorded_postgres,
    recorded_sqlite,
)
from ruvon.implementations.persistence._sql import describe
from ruvon.settings import database_url, sqlite_path_from_url

__all__ = [
    "DatabaseStats",
    "MigrationInfo",
    "MigrationStatus",
    "database_location",
    "database_stats",
    "migrate",
    "migration_status",
    "validate_schema",
]

T = TypeVar("T")

Kind = Literal["sqlite", "postgres", "memory"]

_CONNECT_TIMEOUT = 10.0
_SQLITE_TIMEOUT = 30.0
"""Seconds :func:`migrate` waits for another process's write lock on an SQLite file."""


@dataclass(frozen=True, slots=True)
class MigrationInfo:
    """One migration: its number and name, and when it was applied."""

    version: int
    name: str
    applied_at: datetime | None = None
    """When it was applied: as recorded in ``schema_migrations`` for a status, the moment this
    call committed it for :func:`migrate`; ``None`` for a pending migration."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        at = None if self.applied_at is None else self.applied_at.isoformat()
        return {"version": self.version, "name": self.name, "applied_at": at}


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Which of this release's migrations a database has."""

    kind: Kind
    location: str
    """The SQLite file, or ``host:port/database`` (and the schema) of PostgreSQL."""
    persistent: bool
    """False for ``memory://`` and SQLite ``:memory:``: nothing outlives the process."""
    applied: tuple[MigrationInfo, ...] = ()
    pending: tuple[MigrationInfo, ...] = ()
    unknown: tuple[MigrationInfo, ...] = ()
    """Recorded in the database but not among this release's files: a newer Ruvon migrated it."""

    @property
    def up_to_date(self) -> bool:
        """Nothing is pending."""
        return not self.pending

    @property
    def current_version(self) -> int | None:
        """The highest migration recorded, or ``None`` if none is."""
        versions = [m.version for m in (*self.applied, *self.unknown)]
        return max(versions) if versions else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (with ``up_to_date`` and ``current_version``)."""
        return {
            "kind": self.kind,
            "location": self.location,
            "persistent": self.persistent,
            "current_version": self.current_version,
            "up_to_date": self.up_to_date,
            "applied": [m.to_dict() for m in self.applied],
            "pending": [m.to_dict() for m in self.pending],
            "unknown": [m.to_dict() for m in self.unknown],
        }


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    """What a database holds."""

    kind: Kind
    location: str
    persistent: bool
    size_bytes: int | None = None
    """SQLite: the file and its write-ahead log. PostgreSQL: Ruvon's tables in the schema, with
    their indexes and TOAST. ``None`` when nothing is persistent."""
    schema_version: int | None = None
    """The highest migration recorded."""
    tables: Mapping[str, int] = field(default_factory=dict)
    """Rows per Ruvon table (exact ``count(*)``; tables that do not exist are left out)."""
    workflows_by_status: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_workflows(self) -> int:
        """Rows of ``workflow_executions``."""
        return self.tables.get("workflow_executions", 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (with ``total_workflows``)."""
        return {
            "kind": self.kind,
            "location": self.location,
            "persistent": self.persistent,
            "size_bytes": self.size_bytes,
            "schema_version": self.schema_version,
            "tables": dict(self.tables),
            "total_workflows": self.total_workflows,
            "workflows_by_status": dict(self.workflows_by_status),
        }


# -- the public functions --------------------------------------------------------------------


def database_location(url: str | None = None) -> str:
    """Where ``url`` points, for messages: the SQLite file's absolute path, or
    ``host:port/database`` (and ``schema <name>``) without user or password."""
    return _target(url).location


async def migration_status(url: str | None = None) -> MigrationStatus:
    """The applied, pending and unknown migrations of the database at ``url``. Reads only: a
    missing SQLite file is not created (everything is pending)."""
    target = _target(url)
    if not target.persistent:
        return MigrationStatus(target.kind, target.location, False)
    if target.kind == "sqlite":
        recorded = await _sqlite(target, "read its migrations", recorded_sqlite) or []
    else:
        async with _postgres(target, "read its migrations") as conn:
            recorded = await recorded_postgres(conn)
    return _status(target, recorded)


async def migrate(
    url: str | None = None,
    dry_run: bool = False,
    *,
    on_applied: Callable[[MigrationInfo], object] | None = None,
) -> list[MigrationInfo]:
    """Apply the pending migrations of the database at ``url`` (creating the SQLite file, or
    the PostgreSQL schema named by ``search_path``, if missing); return those this call
    applied, in order. ``on_applied`` is called on the event loop as each one commits (for a
    progress display). With ``dry_run``, nothing is written and the pending migrations are
    returned. Another process migrating at the same time is waited for, not raced."""
    target = _target(url)
    if not target.persistent:
        return []
    if dry_run:
        return list((await migration_status(url)).pending)
    loop = asyncio.get_running_loop()
    applied: list[MigrationInfo] = []

    def report(migration: Migration) -> None:
        info = MigrationInfo(migration.version, migration.name, _now())
        applied.append(info)
        if on_applied is not None:
            on_applied(info)

    if target.kind == "sqlite":

        def on_thread(migration: Migration) -> None:
            loop.call_soon_threadsafe(report, migration)

        # The reports are queued on the loop before the thread's result is: they all run
        # before this call goes on.
        await _sqlite(target, "migrate", lambda conn: migrate_sqlite(conn, on_thread), create=True)
    else:
        async with _postgres(target, "migrate the schema") as conn:
            await migrate_postgres(conn, _quoted(target.schema), report)
    return applied


async def database_stats(url: str | None = None) -> DatabaseStats:
    """Kind, location, size, rows per Ruvon table and workflows per status of the database at
    ``url``. A missing SQLite file raises ``PersistenceError``."""
    target = _target(url)
    if not target.persistent:
        return DatabaseStats(target.kind, target.location, False)
    names = list(_catalog.expected_sqlite().tables)  # the dialects' tables are the same
    if target.kind == "sqlite":

        def read(conn: sqlite3.Connection) -> tuple[list[Recorded], dict[str, int], dict[str, int]]:
            counts = _catalog.sqlite_counts(conn, names)
            return recorded_sqlite(conn), counts, _catalog.sqlite_statuses(conn)

        found = await _sqlite(target, "read its statistics", read)
        if found is None:
            raise PersistenceError(f"No SQLite database at {target.location}: nothing created it.")
        recorded, counts, statuses = found
        assert target.path is not None
        size = sum(_file_size(target.path + suffix) for suffix in ("", "-wal"))
    else:
        async with _postgres(target, "read its statistics") as conn:
            schema = await _current_schema(conn, target)
            recorded = await recorded_postgres(conn)
            counts = await _catalog.postgres_counts(conn, names)
            statuses = await _catalog.postgres_statuses(conn)
            size = await _catalog.postgres_size(conn, schema, names)
    version = max((row[0] for row in recorded), default=None)
    return DatabaseStats(target.kind, target.location, True, size, version, counts, statuses)


async def validate_schema(url: str | None = None) -> list[str]:
    """What differs between the database at ``url`` and the schema this release's migration
    files build, one sentence per problem; empty if nothing does. Extra tables, columns and
    indexes (an application's own) are not problems."""
    target = _target(url)
    if not target.persistent:
        return []
    if target.kind == "sqlite":

        def read(conn: sqlite3.Connection) -> tuple[Catalog, list[Recorded]]:
            return _catalog.sqlite_catalog(conn), recorded_sqlite(conn)

        found = await _sqlite(target, "read its schema", read)
        if found is None:
            return [f"No SQLite database at {target.location}: no migration is applied yet."]
        actual, recorded = found
        expected = _catalog.expected_sqlite()
    else:
        async with _postgres(target, "read its schema") as conn:
            schema = await conn.fetchval("SELECT current_schema()")
            if schema is None:
                return [
                    f"No schema of the search_path exists at {target.location}: no migration "
                    "is applied yet."
                ]
            actual = await _catalog.postgres_catalog(conn, schema)
            recorded = await recorded_postgres(conn)
            expected = await _catalog.expected_postgres(conn)
    if not set(expected.tables) & set(actual.tables):
        return [f"No Ruvon table in {target.location}: no migration is applied yet."]
    status = _status(target, recorded)
    problems = [f"Migration {m.version:04d} ({m.name}) is not applied." for m in status.pending]
    problems += [
        f"Migration {m.version:04d} ({m.name}) was applied by a newer Ruvon than this one."
        for m in status.unknown
    ]
    return problems + _catalog.differences(expected, actual)


# -- where a URL points ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    kind: Kind
    url: str
    location: str
    persistent: bool = True
    path: str | None = None
    """The SQLite file."""
    schema: str | None = None
    """The PostgreSQL schema named by ``search_path``, if one is."""


def _target(url: str | None) -> _Target:
    url = url or database_url()
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    if scheme == "memory":
        return _Target("memory", url, "memory (nothing persistent)", persistent=False)
    if scheme == "sqlite":
        path = sqlite_path_from_url(url)
        if path == ":memory:":
            return _Target("sqlite", url, "SQLite :memory: (nothing persistent)", persistent=False)
        return _Target("sqlite", url, os.path.abspath(path), path=path)
    if scheme in ("postgresql", "postgres"):
        url = "postgresql" + url[url.index(":") :]  # postgresql+asyncpg:// is still asyncpg
        parts = urlsplit(url)
        try:
            host = parts.hostname or "localhost"
            port = f":{parts.port}" if parts.port else ""
        except ValueError as exc:
            raise ValueError(f"Invalid PostgreSQL URL: {exc}") from None
        where = f"{host}{port}/{parts.path.lstrip('/')}"
        paths = parse_qs(parts.query).get("search_path", [])
        schema = paths[0].split(",")[0].strip().strip('"') if paths else None
        if schema:
            where += f" (schema {schema})"
        return _Target("postgres", url, where, schema=schema or None)
    raise ValueError(
        f"Unsupported database URL scheme '{scheme}': use sqlite:///path, postgresql://... "
        "or memory://"
    )


def _status(target: _Target, recorded: list[Recorded]) -> MigrationStatus:
    files = load_migrations("sqlite" if target.kind == "sqlite" else "postgres")
    done = {version: at for version, _name, at in recorded}
    known = {m.version for m in files}
    return MigrationStatus(
        target.kind,
        target.location,
        True,
        applied=tuple(
            MigrationInfo(m.version, m.name, done[m.version]) for m in files if m.version in done
        ),
        pending=tuple(MigrationInfo(m.version, m.name) for m in files if m.version not in done),
        unknown=tuple(MigrationInfo(v, n, at) for v, n, at in recorded if v not in known),
    )


# -- connections -----------------------------------------------------------------------------


async def _sqlite(
    target: _Target,
    action: str,
    work: Callable[[sqlite3.Connection], T],
    *,
    create: bool = False,
) -> T | None:
    """``work`` on a connection to the SQLite file, in a thread; ``None`` if the file does not
    exist (unless ``create``). sqlite3 errors become ``PersistenceError``."""
    assert target.path is not None
    path = target.path

    def run() -> T | None:
        if not create and not os.path.exists(path):
            return None
        if create:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT, isolation_level=None)
        try:
            if create:
                conn.execute("PRAGMA journal_mode=WAL")  # as the provider makes its files
            conn.execute("PRAGMA foreign_keys=ON")
            return work(conn)
        finally:
            conn.close()

    try:
        return await asyncio.to_thread(run)
    except (sqlite3.Error, OSError) as exc:
        raise PersistenceError(
            f"SQLite database {target.location} failed to {action}: {describe(exc)}"
        ) from None


@asynccontextmanager
async def _postgres(target: _Target, action: str) -> AsyncIterator[Any]:
    """An asyncpg connection for one call; driver errors become ``PersistenceError``."""
    try:
        import asyncpg
    except ImportError as exc:
        raise ImportError(
            f"PostgreSQL needs an optional dependency: pip install 'ruvon-sdk[postgres]' ({exc})"
        ) from exc
    errors = (
        OSError,
        asyncio.TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
    )
    try:
        conn = await asyncpg.connect(target.url, timeout=_CONNECT_TIMEOUT)
    except errors as exc:
        raise PersistenceError(
            f"Cannot connect to PostgreSQL at {target.location}: {describe(exc)}"
        ) from None
    try:
        yield conn
    except errors as exc:
        raise PersistenceError(
            f"PostgreSQL at {target.location} failed to {action}: {describe(exc)}"
        ) from None
    finally:
        with contextlib.suppress(*errors):
            await conn.close(timeout=_CONNECT_TIMEOUT)


async def _current_schema(conn: Any, target: _Target) -> str:
    schema: str | None = await conn.fetchval("SELECT current_schema()")
    if schema is None:
        raise PersistenceError(
            f"PostgreSQL at {target.location}: no schema of the search_path exists "
            "(migrating creates the one the URL names)."
        )
    return schema


def _quoted(schema: str | None) -> str | None:
    if schema is None:
        return None
    return '"' + schema.replace('"', '""') + '"'


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _now() -> datetime:
    return datetime.now(timezone.utc)
