"""``ruvon.database``: the migrations a database has, applying the missing ones, what it holds,
and its schema compared with the migration files, on SQLite and PostgreSQL (a fresh file or
schema per test), and on the stores that keep nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from ruvon import database
from ruvon.errors import PersistenceError
from ruvon.implementations.persistence import _migrations
from ruvon.providers.persistence import AuditEvent
from ruvon.settings import persistence_from_url
from tests.providers.test_migrations import MIGRATION_FILES, VERSIONS
from tests.providers.test_persistence_compliance import make_record

NAMES = [name.split("_", 1)[1] for name in MIGRATION_FILES]


@dataclass
class Target:
    """A database under test: its URL, and a way to change it behind Ruvon's back."""

    kind: str
    url: str
    path: Path | None = None
    """The SQLite file."""
    schema: str | None = None
    """The PostgreSQL schema."""

    async def execute(self, sql: str) -> None:
        if self.path is not None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute(sql)
            finally:
                conn.close()
            return
        pg = await asyncpg.connect(self.url)
        try:
            await pg.execute(sql)
        finally:
            await pg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A database that does not exist yet: an SQLite file, or a PostgreSQL schema (named by
    the URL's ``search_path``; dropped afterwards by ``postgres_schema``)."""
    if request.param == "sqlite":
        path = tmp_path / "admin" / "ruvon.db"
        yield Target("sqlite", f"sqlite:///{path}", path)
        return
    base: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    yield Target("postgres", f"{base}?search_path={schema}", schema=schema)


async def test_a_new_database_has_every_migration_pending(target: Target) -> None:
    status = await database.migration_status(target.url)

    assert (status.kind, status.persistent, status.up_to_date) == (target.kind, True, False)
    assert [(m.version, m.name, m.applied_at) for m in status.pending] == [
        (version, name, None) for version, name in zip(VERSIONS, NAMES, strict=True)
    ]
    assert status.applied == status.unknown == ()
    assert status.current_version is None
    [problem] = await database.validate_schema(target.url)
    assert status.location in problem and problem.endswith(": no migration is applied yet.")
    # Looking created nothing.
    if target.path is not None:
        assert not target.path.exists()


async def test_a_dry_run_lists_the_pending_migrations_and_writes_nothing(target: Target) -> None:
    pending = await database.migrate(target.url, dry_run=True)

    assert [(m.version, m.name) for m in pending] == list(zip(VERSIONS, NAMES, strict=True))
    assert not (await database.migration_status(target.url)).applied
    if target.path is not None:
        assert not target.path.exists()


async def test_migrate_applies_each_migration_once_and_reports_it(target: Target) -> None:
    seen: list[int] = []

    applied = await database.migrate(target.url, on_applied=lambda m: seen.append(m.version))

    assert [m.version for m in applied] == seen == VERSIONS
    assert all(m.applied_at is not None for m in applied)
    status = await database.migration_status(target.url)
    assert status.up_to_date and status.pending == ()
    assert [(m.version, m.name) for m in status.applied] == list(zip(VERSIONS, NAMES, strict=True))
    assert all(m.applied_at is not None for m in status.applied)
    assert status.current_version == VERSIONS[-1]
    assert status.to_dict()["up_to_date"] is True
    assert await database.validate_schema(target.url) == []
    # Again: nothing to do; the dry run agrees.
    assert await database.migrate(target.url) == []
    assert await database.migrate(target.url, dry_run=True) == []


async def test_concurrent_migrations_apply_each_version_once(target: Target) -> None:
    results = await asyncio.gather(*(database.migrate(target.url) for _ in range(3)))

    assert sorted(m.version for result in results for m in result) == VERSIONS
    assert (await database.migration_status(target.url)).up_to_date


async def test_a_provider_opens_a_migrated_database_and_the_status_sees_its_own(
    target: Target,
) -> None:
    if target.schema is not None:  # a provider uses the URL's schema, but does not create it
        await target.execute(f'CREATE SCHEMA "{target.schema}"')
    async with persistence_from_url(target.url):
        pass
    assert (await database.migration_status(target.url)).up_to_date
    assert await database.validate_schema(target.url) == []


async def test_an_older_database_shows_the_later_migrations_pending(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        real = _migrations.load_migrations
        patch.setattr(_migrations, "load_migrations", lambda dialect: real(dialect)[:1])
        assert [m.version for m in await database.migrate(target.url)] == [1]

    status = await database.migration_status(target.url)
    assert [m.version for m in status.applied] == [1]
    assert [m.version for m in status.pending] == VERSIONS[1:]
    problems = await database.validate_schema(target.url)
    assert problems[: len(VERSIONS) - 1] == [
        f"Migration {version:04d} ({name}) is not applied."
        for version, name in zip(VERSIONS[1:], NAMES[1:], strict=True)
    ]
    assert "Column workflow_executions.progress is missing." in problems
    index = "ix_workflow_executions_org_created on workflow_executions (org_id, created_at)"
    assert f"Index {index} is missing." in problems

    assert [m.version for m in await database.migrate(target.url)] == VERSIONS[1:]
    assert await database.validate_schema(target.url) == []


async def test_validate_names_each_difference(target: Target) -> None:
    await database.migrate(target.url)
    await target.execute("DROP INDEX ix_tasks_execution")
    await target.execute("ALTER TABLE workflow_metrics DROP COLUMN unit")
    await target.execute("DROP TABLE compensation_log")
    await target.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) "
        "VALUES (99, 'future', '2030-01-01T00:00:00+00:00')"
    )

    problems = await database.validate_schema(target.url)

    assert problems == [
        "Migration 0099 (future) was applied by a newer Ruvon than this one.",
        "Table compensation_log is missing.",
        "Column workflow_metrics.unit is missing.",
        "Index ix_tasks_execution on tasks (execution_id) is missing.",
    ]
    status = await database.migration_status(target.url)
    assert [m.version for m in status.unknown] == [99]
    assert status.up_to_date and status.current_version == 99


async def test_validate_names_a_column_of_another_type(target: Target) -> None:
    await database.migrate(target.url)
    await target.execute("DROP TABLE workflow_heartbeats")
    await target.execute(
        "CREATE TABLE workflow_heartbeats (workflow_id TEXT PRIMARY KEY, worker_id INTEGER, "
        "last_heartbeat TEXT NOT NULL, current_step TEXT, step_started_at TEXT, metadata TEXT)"
    )

    problems = await database.validate_schema(target.url)

    expected_type = "TEXT" if target.kind == "sqlite" else "text"
    actual_type = "INTEGER" if target.kind == "sqlite" else "integer"
    assert f"Column workflow_heartbeats.worker_id is {actual_type}, expected {expected_type}." in (
        problems
    )
    assert (
        "Index ix_workflow_heartbeats_last on workflow_heartbeats (last_heartbeat) is missing."
        in (problems)
    )


async def test_stats_count_the_rows_of_every_table(target: Target) -> None:
    store = persistence_from_url(target.url)
    await database.migrate(target.url)
    async with store:
        await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_STARTED")])
        await store.create_workflow(make_record("wf-2", status="COMPLETED"))
        await store.create_workflow(make_record("wf-3", status="COMPLETED"))

    stats = await database.database_stats(target.url)

    assert (stats.kind, stats.persistent, stats.schema_version) == (target.kind, True, VERSIONS[-1])
    assert stats.size_bytes is not None and stats.size_bytes > 0
    assert stats.tables["workflow_executions"] == stats.total_workflows == 3
    assert stats.tables["workflow_audit_log"] == 1
    assert stats.tables["schema_migrations"] == len(VERSIONS)
    assert stats.tables["tasks"] == stats.tables["scheduled_workflows"] == 0
    assert set(stats.tables) >= {"workflow_heartbeats", "compensation_log", "workflow_metrics"}
    assert dict(stats.workflows_by_status) == {"ACTIVE": 1, "COMPLETED": 2}
    data = stats.to_dict()
    assert data["total_workflows"] == 3 and data["tables"]["workflow_executions"] == 3


async def test_stats_of_a_missing_database_fail(target: Target) -> None:
    with pytest.raises(PersistenceError, match=r"No SQLite database|no schema of the search_path"):
        await database.database_stats(target.url)


async def test_the_location_never_shows_the_password() -> None:
    url = "postgresql://ruvon:s3cret@127.0.0.1:1/orders?search_path=sales"
    assert database.database_location(url) == "127.0.0.1:1/orders (schema sales)"
    with pytest.raises(PersistenceError) as caught:
        await database.migration_status(url)
    message = str(caught.value)
    assert message.startswith("Cannot connect to PostgreSQL at 127.0.0.1:1/orders (schema sales)")
    assert "s3cret" not in message


def test_the_location_of_an_sqlite_file_is_its_absolute_path(tmp_path: Path) -> None:
    assert database.database_location(f"sqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"


async def test_a_file_that_is_not_a_database_is_a_persistence_error(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_text("not a database " * 100)
    url = f"sqlite:///{path}"
    for call in (database.migration_status, database.database_stats, database.validate_schema):
        with pytest.raises(PersistenceError, match="file is not a database"):
            await call(url)


@pytest.mark.parametrize("url", ["memory://", "sqlite://", "sqlite:///:memory:"])
async def test_stores_that_keep_nothing(url: str) -> None:
    status = await database.migration_status(url)
    assert (status.persistent, status.up_to_date, status.applied, status.pending) == (
        False,
        True,
        (),
        (),
    )
    assert "nothing persistent" in status.location
    stats = await database.database_stats(url)
    assert (stats.persistent, stats.size_bytes, dict(stats.tables)) == (False, None, {})
    assert await database.migrate(url) == []
    assert await database.validate_schema(url) == []


async def test_an_unknown_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Unsupported database URL scheme 'mysql'"):
        await database.migration_status("mysql://localhost/x")
