"""What an SQL database holds of Ruvon's schema, read from its catalog, and what it should hold.

A :class:`Catalog` is the tables (each column's type and nullability) and the indexes (table
and columns) of one database: SQLite's ``PRAGMA`` tables, or PostgreSQL's catalog for the
connection's current schema. The *expected* catalog is the one the migration files build on an
empty scratch database of the same dialect — an SQLite ``:memory:`` database, or PostgreSQL
temporary tables in a transaction that is rolled back — so it never drifts from the files.

The row counts (:func:`sqlite_counts`, :func:`postgres_counts`) are ``count(*)`` of every
table, exact rather than estimated, and the workflows per status. :func:`differences` compares
two catalogs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ruvon.implementations.persistence._columns import WORKFLOW_COLUMNS
from ruvon.implementations.persistence._migrations import load_migrations, migrate_sqlite

__all__ = [
    "Catalog",
    "ColumnInfo",
    "IndexInfo",
    "differences",
    "expected_postgres",
    "expected_sqlite",
    "postgres_catalog",
    "postgres_counts",
    "postgres_size",
    "postgres_statuses",
    "sqlite_catalog",
    "sqlite_counts",
    "sqlite_statuses",
]

_IMPLICIT_SQLITE = "sqlite_autoindex_"
"""SQLite's own indexes of PRIMARY KEY and UNIQUE columns: part of the table, not compared."""


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """A column's declared type (as the dialect spells it) and whether it may be NULL."""

    type: str
    nullable: bool


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """The table an index belongs to and its columns, in order."""

    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Tables (name → column → info) and indexes (name → info) of one database or schema."""

    tables: Mapping[str, Mapping[str, ColumnInfo]]
    indexes: Mapping[str, IndexInfo]


# -- SQLite ----------------------------------------------------------------------------------


def sqlite_catalog(conn: sqlite3.Connection) -> Catalog:
    """The tables and indexes of an SQLite database (SQLite's own tables left out)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    tables: dict[str, dict[str, ColumnInfo]] = {}
    indexes: dict[str, IndexInfo] = {}
    for table in names:
        # PRAGMA table_info: cid, name, type, notnull, default, pk
        tables[table] = {
            row[1]: ColumnInfo(str(row[2]).upper(), not row[3])
            for row in conn.execute(f"PRAGMA table_info('{table}')")
        }
        for row in conn.execute(f"PRAGMA index_list('{table}')"):
            name = row[1]
            if name.startswith(_IMPLICIT_SQLITE):
                continue
            columns = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
            indexes[name] = IndexInfo(table, columns)
    return Catalog(tables, indexes)


@cache
def expected_sqlite() -> Catalog:
    """What the SQLite migration files build on an empty database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate_sqlite(conn)
        return sqlite_catalog(conn)
    finally:
        conn.close()


def sqlite_counts(conn: sqlite3.Connection, tables: Iterable[str]) -> dict[str, int]:
    """The rows of each of ``tables`` that exists."""
    present = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    return {
        table: int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
        for table in tables
        if table in present
    }


def sqlite_statuses(conn: sqlite3.Connection) -> dict[str, int]:
    """Workflows per status (none if the table is missing)."""
    try:
        rows = conn.execute(
            "SELECT status, count(*) FROM workflow_executions GROUP BY status ORDER BY status"
        ).fetchall()
    except sqlite3.OperationalError:  # no such table
        return {}
    return {str(status): int(count) for status, count in rows}


# -- comparing --------------------------------------------------------------------------------


def differences(expected: Catalog, actual: Catalog) -> list[str]:
    """Every expected table, column and index that is missing or different in ``actual``, one
    sentence each (tables and indexes by name). What ``actual`` has in addition (an
    application's own tables, columns or indexes) is not a difference. ``workflow_executions``
    must also have every column of :data:`WORKFLOW_COLUMNS`, which the statements are made
    from."""
    problems: list[str] = []
    for table, columns in sorted(expected.tables.items()):
        found = actual.tables.get(table)
        if found is None:
            problems.append(f"Table {table} is missing.")
            continue
        wanted = dict(columns)
        if table == "workflow_executions":
            for declared in WORKFLOW_COLUMNS:
                wanted.setdefault(declared.name, ColumnInfo("", True))  # any type
        for name, info in wanted.items():
            have = found.get(name)
            if have is None:
                problems.append(f"Column {table}.{name} is missing.")
            elif info.type and have.type != info.type:
                problems.append(f"Column {table}.{name} is {have.type}, expected {info.type}.")
            elif info.type and have.nullable != info.nullable:
                should = "allow NULL" if info.nullable else "be NOT NULL"
                problems.append(f"Column {table}.{name} should {should}.")
    for name, index in sorted(expected.indexes.items()):
        if index.table not in actual.tables:
            continue  # the missing table says it
        have_index = actual.indexes.get(name)
        if have_index is None:
            problems.append(f"Index {name} on {_on(index)} is missing.")
        elif have_index != index:
            problems.append(f"Index {name} is on {_on(have_index)}, expected {_on(index)}.")
    return problems


def _on(index: IndexInfo) -> str:
    return f"{index.table} ({', '.join(index.columns)})"


# -- PostgreSQL ------------------------------------------------------------------------------

_PG_COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable = 'YES'
FROM information_schema.columns
WHERE table_schema = $1
ORDER BY table_name, ordinal_position
"""

_PG_INDEXES = """
SELECT i.relname, t.relname, array_agg(a.attname ORDER BY k.ord)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = $1
GROUP BY i.relname, t.relname
ORDER BY i.relname
"""

_PG_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname = ANY($2::text[])
"""


async def postgres_catalog(conn: Any, schema: str) -> Catalog:
    """The tables and indexes of one PostgreSQL schema (on an asyncpg connection)."""
    tables: dict[str, dict[str, ColumnInfo]] = {}
    for table, column, kind, nullable in await conn.fetch(_PG_COLUMNS, schema):
        tables.setdefault(table, {})[column] = ColumnInfo(str(kind), bool(nullable))
    indexes = {
        row[0]: IndexInfo(row[1], tuple(row[2])) for row in await conn.fetch(_PG_INDEXES, schema)
    }
    return Catalog(tables, indexes)


async def expected_postgres(conn: Any) -> Catalog:
    """What the PostgreSQL migration files build: applied to temporary tables in a transaction
    that is rolled back, so nothing is left behind (needs only the TEMP privilege)."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("SET LOCAL search_path TO pg_temp")
        for migration in load_migrations("postgres"):
            await conn.execute(migration.sql)
        schema = await conn.fetchval(
            "SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"
        )
        return await postgres_catalog(conn, schema)
    finally:
        await transaction.rollback()


async def postgres_counts(conn: Any, tables: Iterable[str]) -> dict[str, int]:
    """The rows of each of ``tables`` that exists in the connection's ``search_path``."""
    counts: dict[str, int] = {}
    for table in tables:
        if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
            counts[table] = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
    return counts


async def postgres_statuses(conn: Any) -> dict[str, int]:
    """Workflows per status (none if the table is missing)."""
    if await conn.fetchval("SELECT to_regclass('workflow_executions')") is None:
        return {}
    rows = await conn.fetch(
        "SELECT status, count(*) FROM workflow_executions GROUP BY status ORDER BY status"
    )
    return {str(row[0]): int(row[1]) for row in rows}


async def postgres_size(conn: Any, schema: str, tables: Iterable[str]) -> int:
    """Bytes taken by ``tables`` of ``schema``, their indexes and TOAST included."""
    return int(await conn.fetchval(_PG_SIZE, schema, list(tables)))
