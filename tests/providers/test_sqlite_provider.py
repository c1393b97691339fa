"""What only the SQLite provider does: its file, pragmas, thread, locking and errors."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import AuditEvent, MetricPoint, WorkflowCommit, WorkflowRecord
from tests.providers.test_persistence_compliance import load, make_record, make_update

T = TypeVar("T")


def _entries(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


async def _own_pragma(provider: SQLitePersistenceProvider, name: str) -> object:
    # Per-connection settings can only be read on the provider's own connection.
    rows = await provider._fetch(f"PRAGMA {name}", [], "read a pragma")
    return rows[0][0]


async def test_files_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "ruvon.db"
    async with SQLitePersistenceProvider(path) as provider:
        assert _pragma(path, "journal_mode") == "wal"
        assert await _own_pragma(provider, "foreign_keys") == 1
        assert provider.db_path == str(path)


@pytest.mark.parametrize(("setting", "value"), [("OFF", 0), ("normal", 1), ("FULL", 2)])
async def test_synchronous_setting_is_honoured(tmp_path: Path, setting: str, value: int) -> None:
    async with SQLitePersistenceProvider(tmp_path / "x.db", synchronous=setting) as provider:
        assert await _own_pragma(provider, "synchronous") == value


async def test_busy_timeout_comes_from_timeout(tmp_path: Path) -> None:
    async with SQLitePersistenceProvider(tmp_path / "x.db", timeout=2.5) as provider:
        assert await _own_pragma(provider, "busy_timeout") == 2500


def test_invalid_synchronous_setting() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLitePersistenceProvider(":memory:", synchronous="SOMETIMES")


async def test_in_memory_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with SQLitePersistenceProvider(":memory:") as first:
        await first.create_workflow(make_record("wf-1"))
        async with SQLitePersistenceProvider(":memory:") as second:
            assert await second.load_workflow("wf-1") is None
        assert (
            await first.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
            == 2
        )
    assert _entries(tmp_path) == []


async def test_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "ruvon.db"
    async with SQLitePersistenceProvider(path) as provider:
        await provider.create_workflow(make_record("wf-1"))
    assert path.is_file()


async def test_auto_init_on_first_use(tmp_path: Path) -> None:
    provider = SQLitePersistenceProvider(tmp_path / "x.db")
    try:
        assert await provider.load_workflow("wf-1") is None
    finally:
        await provider.close()


async def test_without_auto_init_initialize_is_required(tmp_path: Path) -> None:
    provider = SQLitePersistenceProvider(tmp_path / "x.db", auto_init=False)
    with pytest.raises(PersistenceError, match="initialize"):
        await provider.load_workflow("wf-1")
    await provider.initialize()
    await provider.initialize()
    assert await provider.load_workflow("wf-1") is None
    await provider.close()
    with pytest.raises(PersistenceError, match="initialize"):
        await provider.load_workflow("wf-1")


async def test_close_then_use_again(tmp_path: Path) -> None:
    provider = SQLitePersistenceProvider(tmp_path / "x.db")
    await provider.create_workflow(make_record("wf-1"))
    await provider.close()
    await provider.close()
    assert (await load(provider, "wf-1")).id == "wf-1"
    await provider.close()


async def test_sqlite_errors_become_persistence_errors(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(PersistenceError, match="a-directory") as caught:
        await SQLitePersistenceProvider(directory).initialize()
    assert not isinstance(caught.value, sqlite3.Error)
    assert caught.value.__cause__ is None

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    provider = SQLitePersistenceProvider(garbage)
    with pytest.raises(PersistenceError, match="not a database"):
        await provider.load_workflow("wf-1")
    await provider.close()


async def test_a_held_lock_times_out_as_persistence_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with SQLitePersistenceProvider(path, timeout=0.2) as provider:
        await provider.create_workflow(make_record("wf-1"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(PersistenceError, match="locked"):
                await provider.commit_workflow(
                    WorkflowCommit(make_update("wf-1"), expected_version=1)
                )
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await load(provider, "wf-1")).version == 1


async def test_waiting_for_a_lock_does_not_block_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with SQLitePersistenceProvider(path, timeout=10) as provider:
        await provider.create_workflow(make_record("wf-1"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        commit = asyncio.create_task(
            provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
        )
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not commit.done()
        other.execute("ROLLBACK")
        other.close()
        assert await commit == 2
        assert ticks == 20


async def test_storage_format(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with SQLitePersistenceProvider(path) as provider:
        await provider.create_workflow(
            make_record("wf-1", state={"city": "Zürich"}), [AuditEvent("WORKFLOW_CREATED")]
        )
    conn = sqlite3.connect(path)
    try:
        state, created_at, saga_mode = conn.execute(
            "SELECT state, created_at, saga_mode FROM workflow_executions"
        ).fetchone()
    finally:
        conn.close()
    assert json.loads(state) == {"city": "Zürich"}
    assert len(created_at) == len("2024-01-31T12:00:00.000000+00:00")
    assert created_at.endswith("+00:00")
    assert datetime.fromisoformat(created_at).tzinfo is not None
    assert saga_mode == 0


def test_a_commit_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
        from ruvon.providers.persistence import WorkflowCommit
        from tests.providers.test_persistence_compliance import load, make_record, make_update

        async def main():
            provider = SQLitePersistenceProvider({str(path)!r})
            await provider.create_workflow(make_record("wf-1"))
            await provider.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, timeout=60, check=False
    )
    assert done.returncode == -9

    conn = sqlite3.connect(path)
    try:
        version = conn.execute("SELECT version FROM workflow_executions").fetchone()[0]
    finally:
        conn.close()
    assert version == 2


# -- group commit --------------------------------------------------------------------------
#
# To make a batch deterministic, a test holds the database thread with a job that waits,
# queues its writes behind it, then lets it go: the thread takes everything queued at once.


@contextlib.asynccontextmanager
async def _held(provider: SQLitePersistenceProvider) -> AsyncIterator[None]:
    """Keep the database thread busy until the block ends, so that writes queue up."""
    started, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(30)

    holding = asyncio.ensure_future(provider._call(hold, "hold the thread"))
    try:
        assert await asyncio.to_thread(started.wait, 30)
        yield
    finally:
        release.set()
        await holding


async def _queued(*calls: Coroutine[Any, Any, T]) -> list[asyncio.Task[T]]:
    """Start ``calls`` as tasks and let each of them reach the database thread's queue."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    for _ in range(3):
        await asyncio.sleep(0)
    return tasks


async def _statements(provider: SQLitePersistenceProvider) -> list[str]:
    """Every statement the provider's connection runs from now on, as SQLite reports it."""
    seen: list[str] = []
    await provider._call(lambda conn: conn.set_trace_callback(seen.append), "trace")
    return seen


def _ids(count: int) -> list[str]:
    return [f"wf-{n}" for n in range(count)]


def _transactions(seen: list[str]) -> tuple[int, int, int]:
    return seen.count("BEGIN IMMEDIATE"), seen.count("COMMIT"), seen.count("ROLLBACK")


def _step(workflow_id: str, n: int = 1) -> dict[str, Any]:
    """A commit's arguments for step ``n`` of ``workflow_id`` (one audit entry, one metric)."""
    return {
        "update": make_update(workflow_id, state={"step": n}, current_step_index=n),
        "audit": [AuditEvent("STEP_EXECUTED", step_name=f"step-{n}")],
        "metrics": [MetricPoint("step_duration_ms", float(n), unit="ms", step_name=f"step-{n}")],
    }


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[SQLitePersistenceProvider]:
    async with SQLitePersistenceProvider(tmp_path / "x.db") as provider:
        yield provider


async def test_concurrent_commits_share_transactions(provider: SQLitePersistenceProvider) -> None:
    ids = _ids(50)
    for workflow_id in ids:
        await provider.create_workflow(make_record(workflow_id))
    seen = await _statements(provider)

    versions = await asyncio.gather(
        *(
            provider.commit_workflow(WorkflowCommit(**_step(workflow_id), expected_version=1))
            for workflow_id in ids
        )
    )

    assert versions == [2] * 50
    begins, commits, rollbacks = _transactions(seen)
    assert 1 <= commits < 50
    assert (begins, rollbacks) == (commits, 0)
    for workflow_id in ids:
        record = await load(provider, workflow_id)
        assert (record.version, record.state, record.current_step_index) == (2, {"step": 1}, 1)
        audit = await provider.get_audit_log(workflow_id)
        assert [(event.event_type, event.step_name) for event in audit] == [
            ("STEP_EXECUTED", "step-1")
        ]
        metrics = await provider.get_workflow_metrics(workflow_id=workflow_id)
        assert [(point.metric_name, point.metric_value) for point in metrics] == [
            ("step_duration_ms", 1.0)
        ]
        assert metrics[0].workflow_type == "OrderFlow"
        assert audit[0].timestamp == metrics[0].recorded_at == record.updated_at


async def test_queued_commits_are_written_in_one_transaction(
    provider: SQLitePersistenceProvider,
) -> None:
    ids = _ids(50)
    for workflow_id in ids:
        await provider.create_workflow(make_record(workflow_id))
    seen = await _statements(provider)

    async with _held(provider):
        tasks = await _queued(
            *(
                provider.commit_workflow(WorkflowCommit(**_step(wf), expected_version=1))
                for wf in ids
            )
        )
        assert not any(task.done() for task in tasks)

    assert await asyncio.gather(*tasks) == [2] * 50
    assert _transactions(seen) == (1, 1, 0)
    assert {(await load(provider, wf)).version for wf in ids} == {2}


async def test_batches_are_capped(tmp_path: Path) -> None:
    async with SQLitePersistenceProvider(tmp_path / "x.db", group_commit_max_batch=4) as provider:
        for workflow_id in _ids(10):
            await provider.create_workflow(make_record(workflow_id))
        seen = await _statements(provider)
        async with _held(provider):
            tasks = await _queued(
                *(
                    provider.commit_workflow(WorkflowCommit(**_step(wf), expected_version=1))
                    for wf in _ids(10)
                )
            )
        assert await asyncio.gather(*tasks) == [2] * 10
        assert _transactions(seen) == (3, 3, 0)


async def test_without_group_commit_every_commit_is_a_transaction(tmp_path: Path) -> None:
    async with SQLitePersistenceProvider(tmp_path / "x.db", group_commit=False) as provider:
        for workflow_id in _ids(10):
            await provider.create_workflow(make_record(workflow_id))
        seen = await _statements(provider)
        async with _held(provider):
            tasks = await _queued(
                *(
                    provider.commit_workflow(WorkflowCommit(**_step(wf), expected_version=1))
                    for wf in _ids(10)
                )
            )
        assert await asyncio.gather(*tasks) == [2] * 10
        assert _transactions(seen) == (10, 10, 0)


def test_invalid_batch_size() -> None:
    with pytest.raises(ValueError, match="group_commit_max_batch"):
        SQLitePersistenceProvider(":memory:", group_commit_max_batch=0)


async def test_a_stale_commit_in_a_batch_fails_alone(provider: SQLitePersistenceProvider) -> None:
    for n in range(5):
        await provider.create_workflow(make_record(f"wf-{n}"))
    seen = await _statements(provider)

    async with _held(provider):
        tasks = await _queued(
            provider.commit_workflow(WorkflowCommit(**_step("wf-0"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-1"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-2"), expected_version=7)),  # stale
            provider.commit_workflow(WorkflowCommit(**_step("wf-missing"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-3"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-4"), expected_version=1)),
        )
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert outcomes[:2] == [2, 2] and outcomes[4:] == [2, 2]
    assert isinstance(outcomes[2], ConcurrencyConflictError)
    assert (outcomes[2].workflow_id, outcomes[2].expected_version) == ("wf-2", 7)
    assert isinstance(outcomes[3], WorkflowNotFoundError)
    assert _transactions(seen) == (1, 1, 0)
    stale = await load(provider, "wf-2")
    assert (stale.version, stale.current_step_index) == (1, 0)
    assert await provider.get_audit_log("wf-2") == []
    assert await provider.get_workflow_metrics(workflow_id="wf-2") == []
    assert await provider.get_workflow_metrics(workflow_id="wf-missing") == []
    for workflow_id in ("wf-0", "wf-1", "wf-3", "wf-4"):
        assert (await load(provider, workflow_id)).version == 2
        assert len(await provider.get_workflow_metrics(workflow_id=workflow_id)) == 1


async def test_two_commits_of_one_workflow_in_one_batch(
    provider: SQLitePersistenceProvider,
) -> None:
    await provider.create_workflow(make_record("wf-1"))
    seen = await _statements(provider)

    async with _held(provider):
        tasks = await _queued(
            provider.commit_workflow(WorkflowCommit(**_step("wf-1", 1), expected_version=1)),
            provider.commit_workflow(
                WorkflowCommit(**_step("wf-1", 2), expected_version=2)
            ),  # after the first
            provider.commit_workflow(
                WorkflowCommit(**_step("wf-1", 3), expected_version=2)
            ),  # stale by then
            provider.commit_workflow(WorkflowCommit(**_step("wf-1", 4), expected_version=3)),
        )
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert outcomes[0] == 2 and outcomes[1] == 3 and outcomes[3] == 4
    assert isinstance(outcomes[2], ConcurrencyConflictError)
    assert _transactions(seen) == (1, 1, 0)
    record = await load(provider, "wf-1")
    assert (record.version, record.state) == (4, {"step": 4})
    audit = await provider.get_audit_log("wf-1")
    assert [event.step_name for event in audit] == ["step-1", "step-2", "step-4"]
    metrics = await provider.get_workflow_metrics(workflow_id="wf-1")
    assert [point.metric_value for point in metrics] == [1.0, 2.0, 4.0]


async def test_a_write_that_fails_the_transaction_fails_alone(
    provider: SQLitePersistenceProvider,
) -> None:
    for n in range(5):
        await provider.create_workflow(make_record(f"wf-{n}"))
    # An SQLite error in the middle of a commit, after its UPDATE has run.
    await provider._execute(
        "CREATE TRIGGER boom BEFORE INSERT ON workflow_audit_log WHEN NEW.event_type = 'BOOM' "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END",
        [],
        "create a trigger",
    )
    seen = await _statements(provider)
    bad = {**_step("wf-2"), "audit": [AuditEvent("BOOM")]}

    async with _held(provider):
        tasks = await _queued(
            provider.commit_workflow(WorkflowCommit(**_step("wf-0"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-1"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**bad, expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-3"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-4"), expected_version=1)),
        )
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert outcomes[:2] == [2, 2] and outcomes[3:] == [2, 2]
    error = outcomes[2]
    assert isinstance(error, PersistenceError)
    assert not isinstance(error, ConcurrencyConflictError)
    assert "commit workflow 'wf-2'" in str(error) and "boom" in str(error)
    # The batch, rolled back, then each write in a transaction of its own.
    assert _transactions(seen) == (6, 4, 2)
    assert (await load(provider, "wf-2")).version == 1
    assert await provider.get_workflow_metrics(workflow_id="wf-2") == []
    for workflow_id in ("wf-0", "wf-1", "wf-3", "wf-4"):
        assert (await load(provider, workflow_id)).version == 2


async def test_a_batch_waiting_for_the_lock_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    async with SQLitePersistenceProvider(path, timeout=0.2) as provider:
        for workflow_id in _ids(5):
            await provider.create_workflow(make_record(workflow_id))
        seen = await _statements(provider)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            async with _held(provider):
                tasks = await _queued(
                    *(
                        provider.commit_workflow(WorkflowCommit(**_step(wf), expected_version=1))
                        for wf in _ids(5)
                    )
                )
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            other.execute("ROLLBACK")
            other.close()
        # One wait for the lock, not one per write.
        assert seen.count("BEGIN IMMEDIATE") == 1
        for workflow_id, outcome in zip(_ids(5), outcomes, strict=True):
            assert isinstance(outcome, PersistenceError)
            assert f"commit workflow '{workflow_id}'" in str(outcome) and "locked" in str(outcome)
        assert (
            await provider.commit_workflow(WorkflowCommit(**_step("wf-0"), expected_version=1)) == 2
        )


async def test_creates_join_batches(provider: SQLitePersistenceProvider) -> None:
    await provider.create_workflow(make_record("wf-old"))
    seen = await _statements(provider)
    started = AuditEvent("WORKFLOW_STARTED")

    async with _held(provider):
        tasks = await _queued(
            provider.create_workflow(make_record("wf-a", idempotency_key="k"), [started]),
            provider.create_workflow(make_record("wf-b", idempotency_key="k"), [started]),
            provider.create_workflow(make_record("wf-old"), [started]),
            provider.create_workflow(make_record("wf-c", parent_execution_id="nope"), [started]),
            provider.create_workflow(make_record("wf-d", parent_execution_id="wf-a"), [started]),
            provider.commit_workflow(WorkflowCommit(**_step("wf-a"), expected_version=1)),
        )
    a, b, duplicate, orphan, child, committed = await asyncio.gather(*tasks, return_exceptions=True)

    assert _transactions(seen) == (1, 1, 0)
    assert isinstance(a, WorkflowRecord) and isinstance(b, WorkflowRecord)
    assert a.id == "wf-a" and a.version == 1
    assert b.id == "wf-a"  # the key was taken earlier in the same transaction
    assert isinstance(duplicate, PersistenceError) and "already exists" in str(duplicate)
    assert isinstance(orphan, PersistenceError) and "parent" in str(orphan)
    assert isinstance(child, WorkflowRecord) and child == await load(provider, "wf-d")
    assert committed == 2
    assert await provider.load_workflow("wf-b") is None
    assert await provider.load_workflow("wf-c") is None
    assert [event.event_type for event in await provider.get_audit_log("wf-a")] == [
        "WORKFLOW_STARTED",
        "STEP_EXECUTED",
    ]
    assert len(await provider.get_audit_log("wf-old")) == 0


async def test_a_cancelled_queued_commit_is_not_written(
    provider: SQLitePersistenceProvider,
) -> None:
    await provider.create_workflow(make_record("wf-1"))
    await provider.create_workflow(make_record("wf-2"))
    async with _held(provider):
        cancelled, kept = await _queued(
            provider.commit_workflow(WorkflowCommit(**_step("wf-1"), expected_version=1)),
            provider.commit_workflow(WorkflowCommit(**_step("wf-2"), expected_version=1)),
        )
        cancelled.cancel()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert (await load(provider, "wf-1")).version == 1


def _threads() -> set[threading.Thread]:
    """The database threads alive now (other tests' providers may still have some)."""
    return {thread for thread in threading.enumerate() if thread.name == "ruvon-sqlite"}


async def test_close_with_pending_commits(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    before = _threads()
    provider = SQLitePersistenceProvider(path)
    for n in range(20):
        await provider.create_workflow(make_record(f"wf-{n}"))
    assert len(_threads() - before) == 1

    async with _held(provider):
        tasks = await _queued(
            *(
                provider.commit_workflow(WorkflowCommit(**_step(f"wf-{n}"), expected_version=1))
                for n in range(20)
            )
        )
        closing = asyncio.ensure_future(provider.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
    await asyncio.wait_for(closing, 10)

    # Queued before close(): written, and their callers released.
    assert await asyncio.wait_for(asyncio.gather(*tasks), 10) == [2] * 20
    assert not _threads() - before
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT DISTINCT version FROM workflow_executions").fetchall() == [(2,)]
    finally:
        conn.close()
    # Closed is not broken: the next call opens the file again.
    assert (await load(provider, "wf-0")).version == 2
    await provider.close()
    assert not _threads() - before


async def test_a_dropped_provider_stops_its_thread(tmp_path: Path) -> None:
    before = _threads()
    provider = SQLitePersistenceProvider(tmp_path / "x.db")
    await provider.create_workflow(make_record("wf-1"))
    assert len(_threads() - before) == 1
    del provider
    gc.collect()
    for _ in range(100):
        if not _threads() - before:
            break
        await asyncio.sleep(0.01)
    assert not _threads() - before


def test_batched_commits_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
        from ruvon.providers.persistence import WorkflowCommit
        from tests.providers.test_persistence_compliance import make_record, make_update

        async def main():
            provider = SQLitePersistenceProvider({str(path)!r})
            ids = [f"wf-{{n}}" for n in range(50)]
            for workflow_id in ids:
                await provider.create_workflow(make_record(workflow_id))
            versions = await asyncio.gather(
                *(provider.commit_workflow(WorkflowCommit(make_update(wf), 1)) for wf in ids)
            )
            assert versions == [2] * 50
            print("committed", flush=True)
            time.sleep(60)  # killed here, connection open, nothing checkpointed or closed

        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])}
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "committed"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT version, COUNT(*) FROM workflow_executions GROUP BY 1")
        assert rows.fetchall() == [(2, 50)]
    finally:
        conn.close()
