"""The schema migration runner for the SQL providers.

Migrations are the SQL files in ``migrations/`` named ``NNNN_<name>.<dialect>.sql``: numbered,
append-only, and the only place the schema is written down. The runner records each applied
version in ``schema_migrations`` and applies the missing ones in order, each in its own
transaction together with its bookkeeping row, so a crash leaves either all of a migration or
none of it. Two processes may initialize the same database at once: the migration transaction
holds the database's write lock (SQLite ``BEGIN IMMEDIATE``) or an advisory lock (PostgreSQL
``pg_advisory_xact_lock``), and the version is checked again once the lock is held.

Every statement is written so that it is a no-op on a database that already has its effect
(``IF NOT EXISTS``), so a database built by running the files by hand is adopted. SQLite has no
``ADD COLUMN IF NOT EXISTS``: the runner skips an ``ALTER TABLE ... ADD COLUMN`` whose column
exists.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any, Literal

from ruvon.errors import PersistenceError

__all__ = [
    "Migration",
    "Recorded",
    "load_migrations",
    "migrate_postgres",
    "migrate_sqlite",
    "recorded_postgres",
    "recorded_sqlite",
]

Dialect = Literal["sqlite", "postgres"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")
_ADD_COLUMN = re.compile(
    r'ALTER\s+TABLE\s+"?(\w+)"?\s+ADD\s+(?:COLUMN\s+)?"?(\w+)"?', re.IGNORECASE
)

# Any constant works as long as every Ruvon process uses the same one ("ruvon" in ASCII).
_PG_LOCK_KEY = 0x7275766F6E

_SQLITE_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL
)
"""

_PG_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file of one dialect."""

    version: int
    name: str
    sql: str


Recorded = tuple[int, str, datetime | None]
"""A row of ``schema_migrations``: version, name, and when it was applied (if readable)."""

OnApplied = Callable[[Migration], object]
"""Called with each migration once its transaction has committed."""


@cache
def load_migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """The migrations of ``dialect`` in version order, read from the package's data files."""
    folder = resources.files("ruvon.implementations.persistence").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None or match.group(3) != dialect:
            continue
        version = int(match.group(1))
        if version in found:
            raise PersistenceError(f"Two {dialect} migrations have version {version}.")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise PersistenceError(f"The {dialect} migrations are not numbered 1..n: {versions}.")
    return tuple(found[version] for version in versions)


def split_sqlite_script(script: str) -> list[str]:
    """Split a script into statements, respecting strings, comments and trigger bodies.

    ``executescript`` would do it, but it commits any open transaction first, which would drop
    the write lock taken to apply the migration.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if _has_code(statement):
                statements.append(statement)
            pending = ""
    if _has_code(pending.rstrip(";")):
        raise PersistenceError(f"Incomplete SQL statement at the end of a migration: {pending!r}")
    return statements


def _has_code(sql: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in sql.splitlines())
    return any(line and line != ";" for line in lines)


def _column_exists(conn: sqlite3.Connection, statement: str) -> bool:
    """Whether ``statement`` is an ``ALTER TABLE ... ADD COLUMN`` of a column already there."""
    code = " ".join(line.split("--", 1)[0] for line in statement.splitlines()).strip()
    match = _ADD_COLUMN.match(code)
    if match is None:
        return False
    table, column = match.groups()
    columns = conn.execute(f"PRAGMA table_info('{table}')").fetchall()
    return any(row[1] == column for row in columns)


def recorded_sqlite(conn: sqlite3.Connection) -> list[Recorded]:
    """The migrations ``schema_migrations`` records, in version order; none if the table is
    missing. Reads only: nothing is created."""
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if known is None:
        return []
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    return [(int(version), str(name), _parse_time(at)) for version, name, at in rows]


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:  # a row written by hand
        return None


def migrate_sqlite(conn: sqlite3.Connection, on_applied: OnApplied | None = None) -> list[int]:
    """Apply the missing SQLite migrations; return the versions applied by this call.
    ``on_applied`` is called with each of them as soon as it is committed.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    # Look before creating: even a no-op CREATE would wait for another process's write lock.
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if known is None:
        conn.execute(_SQLITE_BOOKKEEPING)
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done: list[int] = []
    for migration in load_migrations("sqlite"):
        if migration.version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if row is None:
                for statement in split_sqlite_script(migration.sql):
                    if not _column_exists(conn, statement):
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (
                        migration.version,
                        migration.name,
                        datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                    ),
                )
                done.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if on_applied is not None and done and done[-1] == migration.version:
            on_applied(migration)
    return done


async def recorded_postgres(conn: Any) -> list[Recorded]:
    """The migrations ``schema_migrations`` (in the connection's ``search_path``) records, in
    version order; none if the table is missing. Reads only: nothing is created."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return []
    rows = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations ORDER BY 1")
    return [(int(row[0]), str(row[1]), row[2]) for row in rows]


async def migrate_postgres(
    conn: Any, schema: str | None = None, on_applied: OnApplied | None = None
) -> list[int]:
    """Apply the missing PostgreSQL migrations on an asyncpg connection; return those applied.
    ``on_applied`` is called with each of them as soon as it is committed.

    ``schema`` (already quoted) is created first if it is given and does not exist yet; the
    connection's ``search_path`` must point at it.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK_KEY)
        if schema is not None:
            # Checked first because CREATE SCHEMA IF NOT EXISTS still needs the CREATE
            # privilege on the database even when the schema is there.
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema.strip('"')
            )
            if exists is None:
                await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(_PG_BOOKKEEPING)
    applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    done: list[int] = []
    for migration in load_migrations("postgres"):
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK_KEY)
            already = await conn.fetchval(
                "SELECT 1 FROM schema_migrations WHERE version = $1", migration.version
            )
            if already is None:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                done.append(migration.version)
        if on_applied is not None and done and done[-1] == migration.version:
            on_applied(migration)
    return done
