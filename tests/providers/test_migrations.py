"""The schema of the SQL stores: migrations (applied once, adopted when built by hand, upgrading
an existing database without losing rows) and the parity of the two dialects."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ruvon.implementations.persistence import _migrations
from ruvon.implementations.persistence._columns import WORKFLOW_COLUMNS
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import AuditEvent, WorkflowCommit
from tests.providers.test_persistence_compliance import load, make_record, make_update

VERSIONS = [1, 2, 3, 4]
"""Every migration there is: a new migration adds its number here..."""

MIGRATION_FILES = ["0001_init", "0002_query_api", "0003_progress", "0004_leases"]
"""... and its file name (without the dialect) here."""

QUERY_INDEX = "ix_workflow_executions_org_created"
"""The index migration 0002 adds."""

LIST_FILTER_COLUMNS = {
    "status",
    "workflow_type",
    "owner_id",
    "org_id",
    "parent_execution_id",
    "created_at",
}
"""The columns list_workflows/count_workflows filter on: each must lead an index."""

OLD_CREATED_AT = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)


def _migration_sql(name: str) -> str:
    folder = resources.files("ruvon.implementations.persistence").joinpath("migrations")
    return folder.joinpath(name).read_text(encoding="utf-8")


def _sqlite_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    conn.close()
    return [row[0] for row in rows]


def _only_the_first_migrations(monkeypatch: pytest.MonkeyPatch, count: int = 1) -> None:
    """Make the runner know the first ``count`` migrations only, as an earlier release did."""
    real = _migrations.load_migrations
    monkeypatch.setattr(_migrations, "load_migrations", lambda dialect: real(dialect)[:count])


def _sqlite_indexes(path: Path | str) -> dict[str, list[str]]:
    """The indexes of workflow_executions: name → columns, in order."""
    conn = sqlite3.connect(path)
    try:
        names = [row[1] for row in conn.execute("PRAGMA index_list('workflow_executions')")]
        return {
            name: [row[2] for row in conn.execute(f"PRAGMA index_info('{name}')")] for name in names
        }
    finally:
        conn.close()


_PG_INDEXES = """
SELECT i.relname, array_agg(a.attname ORDER BY k.ord)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND t.relname = 'workflow_executions'
GROUP BY i.relname
"""


async def _postgres_indexes(conn: Any, schema: str) -> dict[str, list[str]]:
    return {row[0]: list(row[1]) for row in await conn.fetch(_PG_INDEXES, schema)}


def _leading_columns(indexes: dict[str, list[str]]) -> set[str]:
    return {columns[0] for columns in indexes.values()}


# -- applying and adopting -------------------------------------------------------------------


async def test_sqlite_reopens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "ruvon.db"
    async with SQLitePersistenceProvider(path) as first:
        await first.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
        stored = await load(first, "wf-1")

    async with SQLitePersistenceProvider(path) as second:
        assert await second.load_workflow("wf-1") == stored
        assert len(await second.get_audit_log("wf-1")) == 1

    assert _sqlite_versions(path) == VERSIONS


async def test_sqlite_adopts_a_file_built_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "by-hand.db"
    conn = sqlite3.connect(path)
    conn.executescript(_migration_sql("0001_init.sqlite.sql"))
    conn.close()

    async with SQLitePersistenceProvider(path) as provider:
        await provider.create_workflow(make_record("wf-1"))
        assert (await load(provider, "wf-1")).version == 1

    assert _sqlite_versions(path) == VERSIONS


async def test_sqlite_adopts_a_file_built_by_hand_with_every_migration(tmp_path: Path) -> None:
    # SQLite has no ADD COLUMN IF NOT EXISTS: the runner must skip the columns 0002 and 0003 add.
    path = tmp_path / "by-hand.db"
    conn = sqlite3.connect(path)
    for name in MIGRATION_FILES:
        conn.executescript(_migration_sql(f"{name}.sqlite.sql"))
    conn.close()

    async with SQLitePersistenceProvider(path) as provider:
        await provider.create_workflow(
            make_record("wf-1", idempotency_hash="h", progress={"step": 1})
        )
        stored = await load(provider, "wf-1")
        assert (stored.idempotency_hash, stored.progress) == ("h", {"step": 1})

    assert _sqlite_versions(path) == VERSIONS


async def test_sqlite_concurrent_initialization(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    providers = [SQLitePersistenceProvider(path, timeout=30) for _ in range(4)]
    try:
        await asyncio.gather(*(provider.initialize() for provider in providers))
        await providers[0].create_workflow(make_record("wf-1"))
        assert (await load(providers[3], "wf-1")).id == "wf-1"
    finally:
        for provider in providers:
            await provider.close()
    assert _sqlite_versions(path) == VERSIONS


@pytest.mark.postgres
async def test_postgres_concurrent_initialization(postgres_url: str, postgres_schema: str) -> None:
    providers = [
        PostgresPersistenceProvider(
            postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=2
        )
        for _ in range(4)
    ]
    try:
        await asyncio.gather(*(provider.initialize() for provider in providers))
        await providers[0].create_workflow(make_record("wf-1"))
        assert (await load(providers[3], "wf-1")).id == "wf-1"
        await providers[1].initialize()
        rows = await providers[2].pool.fetch(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        )
    finally:
        for provider in providers:
            await provider.close()
    assert [tuple(row) for row in rows] == [
        (1, "init"),
        (2, "query_api"),
        (3, "progress"),
        (4, "leases"),
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("count", [1, 2, 3])
async def test_postgres_adopts_a_schema_built_by_hand(
    postgres_url: str, postgres_schema: str, count: int
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{postgres_schema}"')
        await conn.execute(f'SET search_path TO "{postgres_schema}"')
        for name in MIGRATION_FILES[:count]:
            await conn.execute(_migration_sql(f"{name}.postgres.sql"))
    finally:
        await conn.close()

    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=2
    )
    async with provider:
        await provider.create_workflow(
            make_record("wf-1", idempotency_hash="h", progress={"step": 1})
        )
        stored = await load(provider, "wf-1")
        assert (stored.idempotency_hash, stored.progress) == ("h", {"step": 1})
        versions = await provider.pool.fetch("SELECT version FROM schema_migrations")
    assert sorted(row[0] for row in versions) == VERSIONS


# -- upgrading a database built by an earlier release ----------------------------------------


async def test_sqlite_upgrade_from_0001_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as patch:
        _only_the_first_migrations(patch)
        async with SQLitePersistenceProvider(path):
            pass
    assert _sqlite_versions(path) == [1]
    assert QUERY_INDEX not in _sqlite_indexes(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO workflow_executions (id, seq, workflow_type, workflow_version, "
            "definition_snapshot, state_model_path, status, state, current_step, "
            "current_step_index, owner_id, org_id, idempotency_key, created_at, updated_at) "
            "VALUES ('old-1', 1, 'OrderFlow', '1.0', '{\"steps\": []}', 'm.State', "
            "'WAITING_HUMAN', '{\"order_id\": \"old-1\"}', 'approve', 2, 'alice', 'acme', "
            "'key-old', ?, ?)",
            (OLD_CREATED_AT.isoformat(timespec="microseconds"),) * 2,
        )
    conn.close()

    async with SQLitePersistenceProvider(path) as provider:
        old = await load(provider, "old-1")
        assert (old.idempotency_key, old.idempotency_hash, old.progress) == ("key-old", None, {})
        assert (old.status, old.state, old.current_step_index) == (
            "WAITING_HUMAN",
            {"order_id": "old-1"},
            2,
        )
        assert (old.owner_id, old.org_id, old.created_at) == ("alice", "acme", OLD_CREATED_AT)
        assert [r.id for r in await provider.list_workflows(org_id="acme")] == ["old-1"]
        # The key keeps its owner; the row of a new workflow has a hash.
        assert (await provider.create_workflow(make_record("n", idempotency_key="key-old"))).id == (
            "old-1"
        )
        await provider.create_workflow(make_record("new-1", idempotency_hash="h"))
        assert (await load(provider, "new-1")).idempotency_hash == "h"

    assert _sqlite_versions(path) == VERSIONS
    indexes = _sqlite_indexes(path)
    assert indexes[QUERY_INDEX] == ["org_id", "created_at"]
    assert _leading_columns(indexes) >= LIST_FILTER_COLUMNS


@pytest.mark.postgres
async def test_postgres_upgrade_from_0001_keeps_the_rows(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{postgres_schema}"')
        await conn.execute(f'SET search_path TO "{postgres_schema}"')
        with monkeypatch.context() as patch:
            _only_the_first_migrations(patch)
            assert await _migrations.migrate_postgres(conn) == [1]
        assert QUERY_INDEX not in await _postgres_indexes(conn, postgres_schema)
        await conn.execute(
            "INSERT INTO workflow_executions (id, workflow_type, workflow_version, "
            "definition_snapshot, state_model_path, status, state, current_step, "
            "current_step_index, owner_id, org_id, idempotency_key, created_at, updated_at) "
            "VALUES ('old-1', 'OrderFlow', '1.0', '{\"steps\": []}', 'm.State', "
            "'WAITING_HUMAN', '{\"order_id\": \"old-1\"}', 'approve', 2, 'alice', 'acme', "
            "'key-old', $1, $1)",
            OLD_CREATED_AT,
        )
    finally:
        await conn.close()

    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=2
    )
    async with provider:
        old = await load(provider, "old-1")
        assert (old.idempotency_key, old.idempotency_hash, old.progress) == ("key-old", None, {})
        assert (old.status, old.state, old.current_step_index) == (
            "WAITING_HUMAN",
            {"order_id": "old-1"},
            2,
        )
        assert (old.owner_id, old.org_id, old.created_at) == ("alice", "acme", OLD_CREATED_AT)
        assert [r.id for r in await provider.list_workflows(org_id="acme")] == ["old-1"]
        assert (await provider.create_workflow(make_record("n", idempotency_key="key-old"))).id == (
            "old-1"
        )
        await provider.create_workflow(make_record("new-1", idempotency_hash="h"))
        assert (await load(provider, "new-1")).idempotency_hash == "h"
        versions = await provider.pool.fetch("SELECT version FROM schema_migrations")
        indexes = await _postgres_indexes(provider.pool, postgres_schema)

    assert sorted(row[0] for row in versions) == VERSIONS
    assert indexes[QUERY_INDEX] == ["org_id", "created_at"]
    assert _leading_columns(indexes) >= LIST_FILTER_COLUMNS


def _v2_row(seq: str, created_at: str) -> str:
    """The INSERT of a row as a release at schema version 2 wrote it (no progress column);
    ``seq`` is the column list's start (SQLite's ``seq`` column, or nothing), ``created_at``
    the placeholder of both times."""
    return (
        f"INSERT INTO workflow_executions ({seq}id, workflow_type, workflow_version, "
        "definition_snapshot, state_model_path, status, state, current_step, "
        "current_step_index, metadata, idempotency_key, idempotency_hash, created_at, "
        f"updated_at) VALUES ({'1, ' if seq else ''}'v2-1', 'OrderFlow', '1.0', "
        "'{\"steps\": []}', 'm.State', 'ACTIVE', '{\"order_id\": \"v2-1\"}', 'charge', 1, "
        f"'{{\"attempt\": 1}}', 'key-v2', 'hash-v2', {created_at}, {created_at})"
    )


async def _check_upgraded_v2_row(
    provider: SQLitePersistenceProvider | PostgresPersistenceProvider,
) -> None:
    """The row written at version 2 reads back unchanged with ``progress == {}``, and takes a
    commit's progress like any other; so does a new workflow."""
    old = await load(provider, "v2-1")
    assert old.progress == {}
    assert (old.state, old.metadata, old.current_step_index) == (
        {"order_id": "v2-1"},
        {"attempt": 1},
        1,
    )
    assert (old.idempotency_key, old.idempotency_hash, old.created_at) == (
        "key-v2",
        "hash-v2",
        OLD_CREATED_AT,
    )
    update = make_update("v2-1", progress={"charge": "COMPLETED"})
    assert await provider.commit_workflow(WorkflowCommit(update, old.version)) == old.version + 1
    assert (await load(provider, "v2-1")).progress == {"charge": "COMPLETED"}
    await provider.create_workflow(make_record("new-1", progress={"n": [1, 2]}))
    assert (await load(provider, "new-1")).progress == {"n": [1, 2]}


async def test_sqlite_upgrade_from_0002_gives_old_rows_an_empty_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v2.db"
    with monkeypatch.context() as patch:
        _only_the_first_migrations(patch, 2)
        async with SQLitePersistenceProvider(path):
            pass
    assert _sqlite_versions(path) == [1, 2]
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(_v2_row("seq, ", "?1"), (OLD_CREATED_AT.isoformat(timespec="microseconds"),))
    conn.close()

    async with SQLitePersistenceProvider(path) as provider:
        await _check_upgraded_v2_row(provider)

    assert _sqlite_versions(path) == VERSIONS


@pytest.mark.postgres
async def test_postgres_upgrade_from_0002_gives_old_rows_an_empty_progress(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{postgres_schema}"')
        await conn.execute(f'SET search_path TO "{postgres_schema}"')
        with monkeypatch.context() as patch:
            _only_the_first_migrations(patch, 2)
            assert await _migrations.migrate_postgres(conn) == [1, 2]
        await conn.execute(_v2_row("", "$1"), OLD_CREATED_AT)
    finally:
        await conn.close()

    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=2
    )
    async with provider:
        await _check_upgraded_v2_row(provider)
        versions = await provider.pool.fetch("SELECT version FROM schema_migrations")
    assert sorted(row[0] for row in versions) == VERSIONS


# -- dialect parity --------------------------------------------------------------------------


def _sqlite_columns(path: str) -> dict[str, dict[str, bool]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: {row[1]: not row[3] for row in conn.execute(f"PRAGMA table_info('{table}')")}
            for table in tables
        }
    finally:
        conn.close()


@pytest.mark.postgres
async def test_schema_parity_between_sqlite_and_postgres(
    sqlite_store: SQLitePersistenceProvider,
    postgres_store: PostgresPersistenceProvider,
    postgres_schema: str,
) -> None:
    sqlite_columns = _sqlite_columns(sqlite_store.db_path)
    rows = await postgres_store.pool.fetch(
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = $1",
        postgres_schema,
    )
    postgres_columns: dict[str, dict[str, bool]] = {}
    for row in rows:
        postgres_columns.setdefault(row["table_name"], {})[row["column_name"]] = (
            row["is_nullable"] == "YES"
        )

    assert set(sqlite_columns) == set(postgres_columns)
    assert {
        "workflow_executions",
        "workflow_audit_log",
        "workflow_execution_logs",
        "workflow_metrics",
        "workflow_heartbeats",
        "compensation_log",
        "tasks",
        "scheduled_workflows",
        "schema_migrations",
    } <= set(sqlite_columns)
    assert sqlite_columns == postgres_columns  # the same columns, equally nullable
    assert sqlite_columns["workflow_executions"]["idempotency_hash"] is True  # nullable
    assert sqlite_columns["workflow_executions"]["progress"] is False  # NOT NULL, '{}' default


@pytest.mark.postgres
async def test_index_parity_between_sqlite_and_postgres(
    sqlite_store: SQLitePersistenceProvider,
    postgres_store: PostgresPersistenceProvider,
    postgres_schema: str,
) -> None:
    sqlite_indexes = {
        name: columns
        for name, columns in _sqlite_indexes(sqlite_store.db_path).items()
        if name.startswith("ix_") and name != "ix_workflow_executions_seq"  # SQLite's own seq
    }
    postgres_indexes = {
        name: columns
        for name, columns in (await _postgres_indexes(postgres_store.pool, postgres_schema)).items()
        if name.startswith("ix_")
    }
    assert sqlite_indexes == postgres_indexes
    assert _leading_columns(sqlite_indexes) >= LIST_FILTER_COLUMNS


# -- the column declaration the statements are generated from --------------------------------

_SQLITE_TYPES = {
    "text": "TEXT",
    "int": "INTEGER",
    "bool": "INTEGER",
    "json": "TEXT",
    "time": "TEXT",
}
_POSTGRES_TYPES = {
    "text": "text",
    "int": "integer",
    "bool": "boolean",
    "json": "jsonb",
    "time": "timestamp with time zone",
}


def test_the_declared_columns_are_sqlites_columns(sqlite_store: SQLitePersistenceProvider) -> None:
    conn = sqlite3.connect(sqlite_store.db_path)
    try:
        table = {row[1]: row[2] for row in conn.execute("PRAGMA table_info('workflow_executions')")}
    finally:
        conn.close()
    assert table.pop("seq") == "INTEGER"  # the insertion order, not a field of the record
    assert table == {column.name: _SQLITE_TYPES[column.kind] for column in WORKFLOW_COLUMNS}


@pytest.mark.postgres
async def test_the_declared_columns_are_postgres_columns(
    postgres_store: PostgresPersistenceProvider, postgres_schema: str
) -> None:
    rows = await postgres_store.pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'workflow_executions'",
        postgres_schema,
    )
    table = {row["column_name"]: row["data_type"] for row in rows}
    assert table.pop("seq") == "bigint"
    assert table == {column.name: _POSTGRES_TYPES[column.kind] for column in WORKFLOW_COLUMNS}
