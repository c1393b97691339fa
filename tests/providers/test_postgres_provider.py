"""What only the PostgreSQL provider does: one statement per commit, group commit, JSONB, its
pool, errors."""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.providers.persistence import AuditEvent, LogEntry, MetricPoint, WorkflowCommit
from tests.providers import test_persistence_compliance as compliance
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
    await provider.commit_workflow(
        WorkflowCommit(make_update("wf-1"), expected_version=1, **entries)
    )
    await provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=2))

    with_entries = await _sent_by(
        queries,
        provider.commit_workflow(
            WorkflowCommit(make_update("wf-1"), expected_version=3, **entries)
        ),
    )
    bare = await _sent_by(
        queries, provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=4))
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
    await provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))

    async def stale() -> None:
        with pytest.raises(PersistenceError):
            await provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))

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
                WorkflowCommit(make_update(i), expected_version=1, audit=[AuditEvent("STEP")])
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


def test_group_commit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    default = PostgresPersistenceProvider("postgresql://localhost/db")
    assert (default.group_commit, default.group_commit_max_batch) == (True, 64)
    assert default.group_commit_concurrency >= 1

    monkeypatch.setenv("POSTGRES_GROUP_COMMIT", "off")
    monkeypatch.setenv("POSTGRES_GROUP_COMMIT_MAX_BATCH", "16")
    monkeypatch.setenv("POSTGRES_GROUP_COMMIT_CONCURRENCY", "3")
    from_env = PostgresPersistenceProvider("postgresql://localhost/db")
    assert (from_env.group_commit, from_env.group_commit_max_batch) == (False, 16)
    assert from_env.group_commit_concurrency == 3

    monkeypatch.setenv("POSTGRES_GROUP_COMMIT", "maybe")
    with pytest.raises(ValueError, match="POSTGRES_GROUP_COMMIT"):
        PostgresPersistenceProvider("postgresql://localhost/db")
    monkeypatch.delenv("POSTGRES_GROUP_COMMIT")
    with pytest.raises(ValueError, match="group_commit_max_batch"):
        PostgresPersistenceProvider("postgresql://localhost/db", group_commit_max_batch=0)


# -- group commit ----------------------------------------------------------------------------

BATCH_MARK = "UPDATE workflow_executions AS w"
"""In the text of a batch statement (and of no single-commit statement)."""


def _is_commit(query: str) -> bool:
    return query.lstrip().startswith("WITH u AS (UPDATE workflow_executions")


@pytest.fixture
async def grouped(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[tuple[PostgresPersistenceProvider, list[Any]]]:
    """A group-committing provider on two connections, and the queries (LoggedQuery) sent."""
    provider = PostgresPersistenceProvider(
        postgres_url,
        schema=postgres_schema,
        pool_min_size=2,
        pool_max_size=2,
        group_commit=True,
        group_commit_concurrency=2,
    )
    await provider.initialize()
    queries: list[Any] = []
    connections = [await provider.pool.acquire() for _ in range(2)]
    for conn in connections:
        conn.add_query_logger(queries.append)
        await provider.pool.release(conn)
    yield provider, queries
    await provider.close()


async def _commits_sent(queries: list[Any]) -> list[Any]:
    await asyncio.sleep(0)  # loggers are called with call_soon
    return [record for record in queries if _is_commit(record.query)]


def _ids_of(record: Any) -> list[str]:
    """The workflow ids a logged commit statement wrote."""
    return list(record.args[0]) if BATCH_MARK in record.query else [record.args[0]]


async def _create(provider: PostgresPersistenceProvider, ids: list[str]) -> None:
    await asyncio.gather(
        *(provider.create_workflow(make_record(i), [AuditEvent("WORKFLOW_CREATED")]) for i in ids)
    )


def _entries(workflow_id: str) -> dict[str, Any]:
    return {
        "audit": [AuditEvent("STEP_COMPLETED", step_name=workflow_id), AuditEvent("SECOND")],
        "metrics": [MetricPoint("step_duration_ms", 1.5, step_name=workflow_id)],
        "logs": [LogEntry("info", f"done {workflow_id}")],
    }


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler (e.g. "Task exception was never
    retrieved"); the test fails at teardown if anything did."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    await asyncio.sleep(0.05)
    gc.collect()
    loop.set_exception_handler(previous)
    assert errors == []


async def test_concurrent_commits_are_written_in_batches(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
) -> None:
    provider, queries = grouped
    ids = [f"wf-{n:02d}" for n in range(50)]
    await _create(provider, ids)
    queries.clear()

    versions = await asyncio.gather(
        *(
            provider.commit_workflow(
                WorkflowCommit(make_update(i, state={"n": i}), expected_version=1, **_entries(i))
            )
            for i in ids
        )
    )

    assert versions == [2] * 50
    sent = await _commits_sent(queries)
    assert 1 <= len(sent) < 50
    assert any(BATCH_MARK in record.query for record in sent)
    for i in ids:
        loaded = await load(provider, i)
        assert (loaded.version, loaded.state) == (2, {"n": i})
        audit = await provider.get_audit_log(i)
        assert [(e.event_type, e.step_name) for e in audit] == [
            ("WORKFLOW_CREATED", None),
            ("STEP_COMPLETED", i),
            ("SECOND", None),
        ]
        assert audit[1].timestamp == audit[2].timestamp == loaded.updated_at
        metrics = await provider.get_workflow_metrics(workflow_id=i)
        assert [(m.step_name, m.workflow_type) for m in metrics] == [(i, "OrderFlow")]
        logs = await provider.get_execution_logs(i)
        assert [(e.level, e.message) for e in logs] == [("INFO", f"done {i}")]


async def test_batches_respect_the_size_cap(postgres_url: str, postgres_schema: str) -> None:
    async with PostgresPersistenceProvider(
        postgres_url,
        schema=postgres_schema,
        pool_min_size=1,
        pool_max_size=1,
        group_commit_max_batch=8,
        group_commit_concurrency=1,
    ) as provider:
        ids = [f"wf-{n:02d}" for n in range(30)]
        await _create(provider, ids)
        queries: list[Any] = []
        async with provider.pool.acquire() as conn:
            conn.add_query_logger(queries.append)

        versions = await asyncio.gather(
            *(
                provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
                for i in ids
            )
        )

        assert versions == [2] * 30
        sent = await _commits_sent(queries)
        assert [len(_ids_of(record)) for record in sent] == [8, 8, 8, 6]


async def test_a_stale_or_missing_commit_in_a_batch_fails_alone(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
) -> None:
    provider, queries = grouped
    ids = [f"wf-{n}" for n in range(8)]
    await _create(provider, ids)
    await provider.commit_workflow(
        WorkflowCommit(make_update("wf-3", state={"kept": True}), expected_version=1)
    )
    before = await load(provider, "wf-3")
    queries.clear()

    results = await asyncio.gather(
        *(
            provider.commit_workflow(
                WorkflowCommit(make_update(i), expected_version=1, **_entries(i))
            )
            for i in [*ids, "ghost"]
        ),
        return_exceptions=True,
    )

    sent = await _commits_sent(queries)
    assert len(sent) == 1 and BATCH_MARK in sent[0].query  # all nine in one statement
    assert isinstance(results[3], ConcurrencyConflictError)
    assert (results[3].workflow_id, results[3].expected_version) == ("wf-3", 1)
    assert isinstance(results[8], WorkflowNotFoundError) and results[8].workflow_id == "ghost"
    assert [r for n, r in enumerate(results) if n not in (3, 8)] == [2] * 7
    assert await load(provider, "wf-3") == before
    assert [e.event_type for e in await provider.get_audit_log("wf-3")] == ["WORKFLOW_CREATED"]
    assert await provider.get_workflow_metrics(workflow_id="wf-3") == []
    assert await provider.get_execution_logs("wf-3") == []
    assert await provider.get_audit_log("ghost") == []
    assert len(await provider.get_audit_log("wf-4")) == 3


async def test_commits_of_one_workflow_never_share_a_batch(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
) -> None:
    provider, queries = grouped
    ids = [f"wf-{n}" for n in range(10)]
    await _create(provider, ids)
    queries.clear()

    # wf-0 three times: versions 1 and 2 in sequence, and a duplicate of the first.
    results = await asyncio.gather(
        provider.commit_workflow(
            WorkflowCommit(make_update("wf-0", state={"n": 1}), expected_version=1)
        ),
        *(
            provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
            for i in ids[1:]
        ),
        provider.commit_workflow(
            WorkflowCommit(make_update("wf-0", state={"n": 2}), expected_version=2)
        ),
        provider.commit_workflow(
            WorkflowCommit(make_update("wf-0", state={"n": 3}), expected_version=1)
        ),
        return_exceptions=True,
    )

    assert results[:-1] == [2] * 10 + [3]
    assert isinstance(results[-1], ConcurrencyConflictError)
    assert (await load(provider, "wf-0")).state == {"n": 2}
    sent = await _commits_sent(queries)
    assert any(BATCH_MARK in record.query for record in sent)
    for record in sent:
        assert len(_ids_of(record)) == len(set(_ids_of(record)))
    # wf-0 went out in three statements; the second succeeding shows it waited for the first.
    assert sum("wf-0" in _ids_of(record) for record in sent) == 3


async def test_a_bad_item_falls_back_and_fails_alone(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
) -> None:
    provider, queries = grouped
    ids = [f"wf-{n}" for n in range(6)]
    await _create(provider, ids)
    queries.clear()

    results = await asyncio.gather(
        *(
            provider.commit_workflow(
                WorkflowCommit(
                    make_update(i, state={"text": "nul \x00" if i == "wf-2" else "fine"}),
                    expected_version=1,
                    **_entries(i),
                )
            )
            for i in ids
        ),
        return_exceptions=True,
    )

    error = results[2]
    assert type(error) is PersistenceError
    assert "wf-2" in str(error) and error.__cause__ is None
    assert "asyncpg" not in "".join(traceback.format_exception(error))
    assert [r for n, r in enumerate(results) if n != 2] == [2] * 5
    sent = await _commits_sent(queries)
    assert BATCH_MARK in sent[0].query and sent[0].exception is not None
    assert len(sent) == 1 + len(ids)  # the failed batch, then one statement each
    assert (await load(provider, "wf-2")).version == 1
    assert len(await provider.get_audit_log("wf-2")) == 1
    for i in ids[3:]:
        assert len(await provider.get_audit_log(i)) == 3
        assert (await load(provider, i)).state == {"text": "fine"}


async def test_close_writes_pending_commits(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
) -> None:
    provider, _queries = grouped
    ids = [f"wf-{n:03d}" for n in range(150)]
    await _create(provider, ids)
    tasks = [
        asyncio.create_task(
            provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
        )
        for i in ids
    ]
    await asyncio.sleep(0)  # every commit queued, the first batch not written yet

    await provider.close()

    assert [task.result() for task in tasks] == [2] * len(ids)
    await provider.initialize()
    assert {(await load(provider, i)).version for i in ids} == {2}


async def test_close_fails_commits_it_cannot_write(
    postgres_url: str, postgres_schema: str, loop_errors: list[dict[str, Any]]
) -> None:
    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=2
    )
    await provider.initialize()
    ids = ["wf-1", "wf-2", "wf-3"]
    await _create(provider, ids)
    locker = await asyncpg.connect(postgres_url, server_settings={"search_path": postgres_schema})
    try:
        await locker.execute("BEGIN")
        await locker.execute("SELECT 1 FROM workflow_executions WHERE id = 'wf-2' FOR UPDATE")
        tasks = [
            asyncio.create_task(
                provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
            )
            for i in ids
        ]
        await asyncio.sleep(0.3)  # the batch is waiting for the lock on wf-2
        assert not any(task.done() for task in tasks)
        provider._close_timeout = 0.3  # instead of three command timeouts

        started = time.monotonic()
        await provider.close()
        assert time.monotonic() - started < 5

        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(type(result) is PersistenceError for result in results), results
        assert "closed" in str(results[0])
    finally:
        await locker.execute("ROLLBACK")
        await locker.close()


async def test_cancelled_callers_leave_the_batcher_working(
    grouped: tuple[PostgresPersistenceProvider, list[Any]],
    postgres_url: str,
    postgres_schema: str,
    loop_errors: list[dict[str, Any]],
) -> None:
    provider, _queries = grouped
    ids = [f"wf-{n}" for n in range(10)]
    await _create(provider, ids)

    # Cancelled while queued: dropped, nothing written.
    queued = [
        asyncio.create_task(
            provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
        )
        for i in ids
    ]
    await asyncio.sleep(0)  # every commit queued, no batch taken yet
    for task in queued[:5]:
        task.cancel()
    results = await asyncio.gather(*queued, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results[:5])
    assert results[5:] == [2] * 5
    assert [(await load(provider, i)).version for i in ids] == [1] * 5 + [2] * 5

    # Cancelled while its batch is being written: it may still commit; the others do.
    locker = await asyncpg.connect(postgres_url, server_settings={"search_path": postgres_schema})
    try:
        await locker.execute("BEGIN")
        await locker.execute("SELECT 1 FROM workflow_executions WHERE id = 'wf-0' FOR UPDATE")
        in_flight = [
            asyncio.create_task(
                provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
            )
            for i in ids[:5]
        ]
        await asyncio.sleep(0.2)  # written, waiting for the lock on wf-0
        for task in in_flight[1:]:
            task.cancel()
    finally:
        await locker.execute("ROLLBACK")
        await locker.close()
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    assert results[0] == 2
    assert all(isinstance(r, asyncio.CancelledError) for r in results[1:])

    # The batcher goes on: the committed versions are there, and new commits are written.
    assert [(await load(provider, i)).version for i in ids] == [2] * 10
    versions = await asyncio.gather(
        *(provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=2)) for i in ids)
    )
    assert versions == [3] * 10


async def test_without_group_commit_every_commit_is_its_own_statement(
    postgres_url: str, postgres_schema: str
) -> None:
    async with PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=1, group_commit=False
    ) as provider:
        ids = [f"wf-{n}" for n in range(10)]
        await _create(provider, ids)
        queries: list[Any] = []
        async with provider.pool.acquire() as conn:
            conn.add_query_logger(queries.append)

        versions = await asyncio.gather(
            *(
                provider.commit_workflow(WorkflowCommit(make_update(i), expected_version=1))
                for i in ids
            )
        )

        assert versions == [2] * 10
        sent = await _commits_sent(queries)
        assert len(sent) == 10
        assert not any(BATCH_MARK in record.query for record in sent)


# The contract's commit semantics once more, on a provider without group commit (the shared
# suite runs them with it, the default).


@pytest.fixture
async def store(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[PostgresPersistenceProvider]:
    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=4, group_commit=False
    )
    await provider.initialize()
    yield provider
    await provider.close()


test_ungrouped_commit_writes_everything = compliance.test_commit_bumps_version_and_writes_everything
test_ungrouped_successive_commits = compliance.test_successive_commits_count_versions
test_ungrouped_stale_version = compliance.test_stale_version_conflicts_and_writes_nothing
test_ungrouped_missing_workflow = compliance.test_commit_on_missing_workflow_is_not_found
test_ungrouped_same_version = compliance.test_concurrent_commits_with_the_same_version
test_ungrouped_delete_cascades = compliance.test_delete_cascades


async def test_task_claim_skips_locked_rows(
    single_connection: tuple[PostgresPersistenceProvider, list[str]],
) -> None:
    provider, queries = single_connection
    await provider.create_workflow(make_record("wf-1"))
    task = await provider.create_task_record("wf-1", "a", 0)
    sent = await _sent_by(queries, provider.claim_next_task("worker-1"))
    assert len(sent) == 1
    assert "FOR UPDATE SKIP LOCKED" in sent[0]
    claimed = await provider.get_task_record(task.task_id)
    assert claimed is not None and claimed.worker_id == "worker-1"
