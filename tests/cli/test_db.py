"""``ruvon db`` (CLI-16..20) through the installed console script, on a fresh SQLite file and a
fresh PostgreSQL schema: init, status, migrate, stats and validate, in text and JSON, and the
one-line error (exit 3) of a database that cannot be reached."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from ruvon.providers.persistence import AuditEvent
from ruvon.settings import persistence_from_url
from tests.cli.conftest import Cli
from tests.providers.test_migrations import MIGRATION_FILES, VERSIONS
from tests.providers.test_persistence_compliance import make_record

UNREACHABLE = "postgresql://postgres:s3cret@127.0.0.1:1/x"


async def _execute(cli: Cli, sql: str) -> None:
    """Change the test's database behind Ruvon's back."""
    if cli.db.startswith("sqlite:"):
        conn = sqlite3.connect(cli.db.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute(sql)
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(cli.db)
    try:
        await pg.execute(sql)
    finally:
        await pg.close()


def test_init_creates_the_schema_and_status_says_it_is_up_to_date(cli: Cli) -> None:
    before = cli("db", "status", "--json")
    assert before.code == 0, before.err
    assert before.json()["up_to_date"] is False
    assert [m["version"] for m in before.json()["pending"]] == VERSIONS

    init = cli("db", "init")

    assert init.code == 0, init.err
    assert "Database schema initialized: " in init.out
    assert f"Applied {len(VERSIONS)} migrations" in init.out
    status = cli("db", "status")
    assert status.code == 0, status.err
    assert "Database is up to date" in status.out
    assert MIGRATION_FILES[-1].split("_", 1)[1] in status.out
    data = cli("db", "status", "--json").json()
    assert data["up_to_date"] is True and data["pending"] == []
    assert data["current_version"] == VERSIONS[-1]
    assert [m["version"] for m in data["applied"]] == VERSIONS
    assert all(m["applied_at"] for m in data["applied"])
    # Idempotent.
    again = cli("db", "init", "--json")
    assert again.code == 0, again.err
    assert again.json()["applied_now"] == [] and again.json()["up_to_date"] is True


def test_migrate_dry_run_lists_then_migrate_applies(cli: Cli) -> None:
    dry = cli("db", "migrate", "--dry-run")

    assert dry.code == 0, dry.err
    for name in MIGRATION_FILES:
        assert f"{name[:4]} {name[5:]}" in dry.out
    assert f"Dry run: {len(VERSIONS)} migrations would be applied." in dry.out
    assert cli("db", "status", "--json").json()["applied"] == []

    applied = cli("db", "migrate")

    assert applied.code == 0, applied.err
    assert f"Applied {len(VERSIONS)} migrations to " in applied.out
    assert cli("db", "status", "--json").json()["up_to_date"] is True


def test_migrate_dry_run_on_an_up_to_date_database(cli: Cli) -> None:
    assert cli("db", "init").code == 0

    dry = cli("db", "migrate", "--dry-run")
    assert dry.code == 0, dry.err
    assert "No pending migrations" in dry.out
    as_json = cli("db", "migrate", "--dry-run", "--json")
    assert as_json.json() == {"dry_run": True, "pending": [], "applied": []}
    plain = cli("db", "migrate")
    assert plain.code == 0 and "No pending migrations" in plain.out


async def test_stats_count_the_workflows_the_sdk_created(cli: Cli) -> None:
    assert cli("db", "init").code == 0
    store = persistence_from_url(cli.db)
    async with store:
        await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_STARTED")])
        await store.create_workflow(make_record("wf-2", status="COMPLETED"))

    stats = cli("db", "stats", "--json")

    assert stats.code == 0, stats.err
    data = stats.json()
    assert data["kind"] == ("sqlite" if cli.db.startswith("sqlite") else "postgres")
    assert data["total_workflows"] == data["tables"]["workflow_executions"] == 2
    assert data["tables"]["workflow_audit_log"] == 1
    assert data["workflows_by_status"] == {"ACTIVE": 1, "COMPLETED": 1}
    assert data["schema_version"] == VERSIONS[-1] and data["size_bytes"] > 0
    assert "s3cret" not in data["location"]
    text = cli("db", "stats")
    assert text.code == 0, text.err
    assert "workflow_executions" in text.out and "Total: 2 workflows" in text.out
    assert "COMPLETED" in text.out


async def test_validate_passes_on_an_initialized_database_and_names_a_missing_index(
    cli: Cli,
) -> None:
    assert cli("db", "init").code == 0

    valid = cli("db", "validate")
    assert valid.code == 0, valid.err
    assert "Schema is valid: " in valid.out
    assert cli("db", "validate", "--json").json()["valid"] is True

    await _execute(cli, "DROP INDEX ix_tasks_execution")
    broken = cli("db", "validate")
    assert broken.code == 1
    assert "1. Index ix_tasks_execution on tasks (execution_id) is missing." in broken.out
    as_json = cli("db", "validate", "--json")
    assert as_json.code == 1
    assert as_json.json()["problems"] == [
        "Index ix_tasks_execution on tasks (execution_id) is missing."
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["db", "init"],
        ["db", "migrate", "--dry-run"],
        ["db", "status"],
        ["db", "stats", "--json"],
        ["db", "validate"],
    ],
)
def test_a_database_that_cannot_be_reached_is_one_line_and_exit_3(
    cli: Cli, command: list[str]
) -> None:
    done = cli(*command, "--db", UNREACHABLE, db=False)

    assert done.code == 3, (done.out, done.err)
    assert done.out == ""
    assert done.err.count("\n") == 1
    assert done.err.startswith(
        "Error: Database error: Cannot connect to PostgreSQL at 127.0.0.1:1/x"
    )
    assert "Traceback" not in done.err and "s3cret" not in done.err


def test_an_sqlite_path_works_like_its_url(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "by-path" / "ruvon.db"

    assert cli("db", "init", "--db", str(path), db=False).code == 0

    status = cli("db", "status", "--json", "--db", str(path), db=False).json()
    assert status["location"] == str(path) and status["up_to_date"] is True


def test_memory_has_nothing_to_migrate(cli: Cli) -> None:
    status = cli("db", "status", "--db", "memory://", db=False)
    assert status.code == 0 and "Nothing is persistent" in status.out
    init = cli("db", "init", "--db", "memory://", db=False)
    assert init.code == 0 and "Nothing to initialize" in init.out


def test_every_db_command_has_an_example_in_its_help(cli: Cli) -> None:
    for command in ("init", "migrate", "status", "stats", "validate"):
        done = cli("db", command, "--help", db=False)
        assert done.code == 0, done.err
        assert "Example: ruvon db " in done.out, command
