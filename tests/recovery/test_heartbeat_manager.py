"""HeartbeatManager (HB-01): a heartbeat row while it runs (first one at start, then every
interval), deleted at stop; ``async with``; a store that fails is logged, never raised."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pytest

from ruvon import WorkflowBuilder
from ruvon.heartbeat import HeartbeatManager, default_worker_id
from ruvon.providers.persistence import Heartbeat, PersistenceProvider
from tests.recovery.conftest import until


async def _beat(store: PersistenceProvider, workflow_id: str) -> Heartbeat | None:
    beats = [b for b in await store.get_stale_heartbeats(0) if b.workflow_id == workflow_id]
    return beats[0] if beats else None


def test_the_default_worker_id_names_host_and_process() -> None:
    host, pid, suffix = default_worker_id().rsplit("-", 2)
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert len(suffix) == 8 and int(suffix, 16) >= 0
    assert default_worker_id() != default_worker_id()


def test_options_are_checked_and_interval_seconds_is_an_alias() -> None:
    store: Any = object()
    assert HeartbeatManager(store, "w", interval_seconds=7).heartbeat_interval_seconds == 7
    manager = HeartbeatManager(store, "w")
    assert (manager.heartbeat_interval_seconds, manager.retry_attempts) == (30, 3)
    assert manager.retry_delay_seconds == 5
    for bad in ({"heartbeat_interval_seconds": 0}, {"retry_attempts": 0}):
        with pytest.raises(ValueError):
            HeartbeatManager(store, "w", **bad)


async def test_start_writes_then_beats_every_interval_and_stop_deletes(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Manual", {"order_id": "H-1"})
    manager = HeartbeatManager(store, run.id, "w-1", heartbeat_interval_seconds=0.01)

    await manager.start(current_step="First", metadata={"task": "t-1"})
    first = await _beat(store, run.id)
    assert first is not None and manager.running
    assert (first.worker_id, first.current_step) == ("w-1", "First")
    assert first.metadata is not None
    assert first.metadata["task"] == "t-1"
    assert (first.metadata["hostname"], first.metadata["pid"]) == (
        socket.gethostname(),
        os.getpid(),
    )
    assert "started_at" in first.metadata

    async def beaten_again() -> bool:
        beat = await _beat(store, run.id)
        return (
            manager.beats >= 3 and beat is not None and beat.last_heartbeat > first.last_heartbeat
        )

    await until(beaten_again, "two more heartbeats")
    await manager.set_step("Second")
    renamed = await _beat(store, run.id)
    assert renamed is not None and renamed.current_step == "Second"

    await manager.stop()
    assert not manager.running
    assert await _beat(store, run.id) is None
    await manager.stop()  # stopping twice is harmless


async def test_async_with(builder: WorkflowBuilder, store: PersistenceProvider) -> None:
    run = await builder.create_workflow("Manual", {"order_id": "H-2"})
    async with HeartbeatManager(store, run.id, heartbeat_interval_seconds=60) as manager:
        beat = await _beat(store, run.id)
        assert beat is not None and beat.worker_id == manager.worker_id
        with pytest.raises(RuntimeError, match="runs already"):
            await manager.start()
    assert await _beat(store, run.id) is None


class _Broken:
    """A store whose heartbeat writes fail (a database that went away)."""

    def __init__(self) -> None:
        self.upserts = 0

    async def upsert_heartbeat(self, *args: Any, **kwargs: Any) -> None:
        self.upserts += 1
        raise ConnectionError("database unreachable")

    async def delete_heartbeat(self, workflow_id: str) -> None:
        raise ConnectionError("database unreachable")


async def test_a_failing_store_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    store = _Broken()
    manager = HeartbeatManager(
        store,  # type: ignore[arg-type]
        "wf-1",
        heartbeat_interval_seconds=0.01,
        retry_attempts=2,
        retry_delay_seconds=0,
    )
    with caplog.at_level(logging.WARNING, logger="ruvon.heartbeat"):
        async with manager:
            done = "the work the heartbeat vouches for"

            async def failed_twice() -> bool:
                return manager.failures >= 2

            await until(failed_twice, "two failed heartbeats")
    assert done
    assert manager.beats == 0 and store.upserts >= 4  # every heartbeat tried twice
    messages = [record.getMessage() for record in caplog.records]
    assert any("Heartbeat of workflow wf-1" in m and "database unreachable" in m for m in messages)
    assert any("Deleting the heartbeat of workflow wf-1 failed" in m for m in messages)
