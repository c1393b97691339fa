"""What only the SQLite provider does: its file, pragmas, thread, locking and errors."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from ruvon.errors import PersistenceError
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import AuditEvent
from tests.providers.test_persistence_compliance import load, make_record, make_update


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
        assert await first.commit_workflow(make_update("wf-1"), expected_version=1) == 2
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
                await provider.commit_workflow(make_update("wf-1"), expected_version=1)
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
            provider.commit_workflow(make_update("wf-1"), expected_version=1)
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
        from tests.providers.test_persistence_compliance import load, make_record, make_update

        async def main():
            provider = SQLitePersistenceProvider({str(path)!r})
            await provider.create_workflow(make_record("wf-1"))
            await provider.commit_workflow(make_update("wf-1"), expected_version=1)
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
