"""What only the PostgreSQL provider does: one statement per commit, JSONB, its pool, errors."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ruvon.errors import PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.providers.persistence import AuditEvent, LogEntry, MetricPoint
from tests.providers.test_persistence_compliance import load, make_record, make_update

pytestmark = pytest.mark.postgres


@pytest.fixture
async def single_connection(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[tuple[PostgresPersistenceProvider, list[str]]]:
    """A provider whose pool has one connection, and the list of queries it sends."""
    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=1
    )
    await provider.initialize()
    queries: list[str] = []
    async with provider.pool.acquire() as conn:
        # Loggers stay on the connection when it goes back to the pool.
        conn.add_query_logger(lambda record: queries.append(record.query))
    yield provider, queries
    await provider.close()


async def _sent_by(queries: list[str], action: Any) -> list[str]:
    queries.clear()
    await action
    await asyncio.sleep(0)  # loggers are called with call_soon
    return list(queries)


async def test_commit_is_one_statement(
    single_connection: tuple[PostgresPersistenceProvider, list[str]],
) -> None:
    provider, queries = single_connection
    await provider.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    entries: dict[str, Any] = {
        "audit": [AuditEvent("STEP_COMPLETED", step_name="a"), AuditEvent("X")],
        "metrics": [MetricPoint("step_duration_ms", 1.5)],
        "logs": [LogEntry("INFO", "done")],
    }
    # The first use of each statement text also prepares it; measure the steady state.
    await provider.commit_workflow(make_update("wf-1"), expected_version=1, **entries)
    await provider.commit_workflow(make_update("wf-1"), expected_version=2)

    with_entries = await _sent_by(
        queries, provider.commit_workflow(make_update("wf-1"), expected_version=3, **entries)
    )
    bare = await _sent_by(
        queries, provider.commit_workflow(make_update("wf-1"), expected_version=4)
    )

    assert len(with_entries) == 1
    assert with_entries[0].lstrip().startswith("WITH u AS (UPDATE workflow_executions")
    assert len(bare) == 1
    assert len(await provider.get_audit_log("wf-1")) == 1 + 2 * 2
    assert len(await provider.get_workflow_metrics(workflow_id="wf-1")) == 2
    assert (await load(provider, "wf-1")).version == 5


async def test_create_is_one_statement(
    single_connection: tuple[PostgresPersistenceProvider, list[str]],
) -> None:
    provider, queries = single_connection
    await provider.create_workflow(make_record("warm-up"), [AuditEvent("WORKFLOW_CREATED")])

    sent = await _sent_by(
        queries,
        provider.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")]),
    )

    assert len(sent) == 1
    assert len(await provider.get_audit_log("wf-1")) == 1


async def test_conflict_costs_a_second_query_only_when_it_happens(
    single_connection: tuple[PostgresPersistenceProvider, list[str]],
) -> None:
    provider, queries = single_connection
    await provider.create_workflow(make_record("wf-1"))
    await provider.commit_workflow(make_update("wf-1"), expected_version=1)

    async def stale() -> None:
        with pytest.raises(PersistenceError):
            await provider.commit_workflow(make_update("wf-1"), expected_version=1)

    assert len(await _sent_by(queries, stale())) == 2


async def test_json_columns_are_jsonb_and_times_timestamptz(
    postgres_store: PostgresPersistenceProvider, postgres_schema: str
) -> None:
    rows = await postgres_store.pool.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1",
        postgres_schema,
    )
    types = {(row["table_name"], row["column_name"]): row["data_type"] for row in rows}

    for column in ("definition_snapshot", "state", "metadata", "completed_steps_stack"):
        assert types["workflow_executions", column] == "jsonb"
    assert types["workflow_audit_log", "event_data"] == "jsonb"
    assert types["workflow_metrics", "tags"] == "jsonb"
    assert types["workflow_execution_logs", "metadata"] == "jsonb"
    assert types["workflow_heartbeats", "metadata"] == "jsonb"
    for column in ("created_at", "updated_at", "completed_at"):
        assert types["workflow_executions", column] == "timestamp with time zone"
    assert types["workflow_heartbeats", "last_heartbeat"] == "timestamp with time zone"
    assert types["workflow_executions", "saga_mode"] == "boolean"


async def test_state_is_queryable_as_jsonb(postgres_store: PostgresPersistenceProvider) -> None:
    await postgres_store.create_workflow(make_record("wf-1", state={"customer": {"tier": "gold"}}))
    tier = await postgres_store.pool.fetchval(
        "SELECT state -> 'customer' ->> 'tier' FROM workflow_executions WHERE id = 'wf-1'"
    )
    assert tier == "gold"


async def test_unreachable_server_is_a_clean_persistence_error() -> None:
    provider = PostgresPersistenceProvider(
        "postgresql://ruvon:s3cret@127.0.0.1:1/nowhere", pool_min_size=1, pool_command_timeout=5
    )

    with pytest.raises(PersistenceError) as caught:
        await provider.initialize()

    error = caught.value
    assert "127.0.0.1:1/nowhere" in str(error)
    assert "s3cret" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert "asyncpg" not in "".join(traceback.format_exception(error))
    assert provider.pool is None


async def test_use_before_initialize_is_an_error(postgres_url: str) -> None:
    provider = PostgresPersistenceProvider(postgres_url)
    with pytest.raises(PersistenceError, match="initialize"):
        await provider.load_workflow("wf-1")


async def test_driver_errors_are_translated(postgres_store: PostgresPersistenceProvider) -> None:
    await postgres_store.create_workflow(make_record("wf-1"))
    await postgres_store.pool.execute("DROP TABLE workflow_heartbeats")

    with pytest.raises(PersistenceError, match="workflow_heartbeats") as caught:
        await postgres_store.upsert_heartbeat("wf-1", "worker-1")

    assert not isinstance(caught.value, asyncpg.PostgresError)
    assert caught.value.__cause__ is None


async def test_missing_parent_is_a_persistence_error(
    postgres_store: PostgresPersistenceProvider,
) -> None:
    with pytest.raises(PersistenceError, match="parent"):
        await postgres_store.create_workflow(make_record("wf-1", parent_execution_id="ghost"))
    assert await postgres_store.load_workflow("wf-1") is None


async def test_entry_for_a_workflow_deleted_meanwhile(
    postgres_store: PostgresPersistenceProvider,
) -> None:
    await postgres_store.create_workflow(make_record("wf-1"))
    await postgres_store.delete_workflow("wf-1")
    with pytest.raises(WorkflowNotFoundError):
        await postgres_store.record_metric("wf-1", MetricPoint("m", 1.0))


async def test_close_and_initialize_again(postgres_store: PostgresPersistenceProvider) -> None:
    await postgres_store.create_workflow(make_record("wf-1"))
    await postgres_store.close()
    assert postgres_store.pool is None
    await postgres_store.initialize()
    await postgres_store.initialize()
    assert (await load(postgres_store, "wf-1")).id == "wf-1"


async def test_many_concurrent_commits_share_the_pool(
    postgres_store: PostgresPersistenceProvider,
) -> None:
    ids = [f"wf-{n}" for n in range(40)]
    await asyncio.gather(*(postgres_store.create_workflow(make_record(i)) for i in ids))
    versions = await asyncio.gather(
        *(
            postgres_store.commit_workflow(
                make_update(i), expected_version=1, audit=[AuditEvent("STEP")]
            )
            for i in ids
        )
    )
    assert versions == [2] * len(ids)


def test_pool_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_POOL_MIN_SIZE", "3")
    monkeypatch.setenv("POSTGRES_POOL_MAX_SIZE", "7")
    monkeypatch.setenv("POSTGRES_POOL_COMMAND_TIMEOUT", "2.5")
    monkeypatch.setenv("POSTGRES_POOL_MAX_QUERIES", "100")
    monkeypatch.setenv("POSTGRES_POOL_MAX_INACTIVE_LIFETIME", "60")

    from_env = PostgresPersistenceProvider("postgresql://localhost/db")
    explicit = PostgresPersistenceProvider("postgresql://localhost/db", pool_max_size=20)

    assert (from_env.pool_min_size, from_env.pool_max_size) == (3, 7)
    assert from_env.pool_command_timeout == 2.5
    assert (from_env.pool_max_queries, from_env.pool_max_inactive_lifetime) == (100, 60.0)
    assert explicit.pool_max_size == 20
    assert explicit.pool_min_size == 3


def test_invalid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_POOL_MAX_SIZE", "many")
    with pytest.raises(ValueError, match="POSTGRES_POOL_MAX_SIZE"):
        PostgresPersistenceProvider("postgresql://localhost/db")
    monkeypatch.delenv("POSTGRES_POOL_MAX_SIZE")
    with pytest.raises(ValueError, match="schema"):
        PostgresPersistenceProvider("postgresql://localhost/db", schema='x"; DROP TABLE y; --')
