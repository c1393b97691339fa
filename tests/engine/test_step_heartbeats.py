"""The engine's own heartbeat: a step that outlives the interval gets a heartbeat row (naming
the step and this process) while it runs, deleted when it ends; short steps write none; a
background ASYNC step beats until its report is applied; a failing heartbeat write never fails
the step."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from ruvon import WorkflowStatus
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.models import StepContext
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import STEPS, ConfigDir, workflow
from tests.support.order_steps import OrderState

RELEASE: dict[str, threading.Event] = {}
"""workflow id -> released by the test (a thread step waits on it)."""
ASYNC_RELEASE: dict[str, asyncio.Event] = {}
"""workflow id -> released by the test (a coroutine step waits on it)."""


async def slow(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Runs until the test releases it."""
    await ASYNC_RELEASE.setdefault(context.workflow_id, asyncio.Event()).wait()
    return {"note": "slow done"}


def slow_in_thread(state: OrderState, context: StepContext) -> dict[str, Any]:
    if not RELEASE.setdefault(context.workflow_id, threading.Event()).wait(timeout=30):
        raise TimeoutError("never released")
    return {"note": "slow done"}


@pytest.fixture
def slow_config(config: ConfigDir) -> ConfigDir:
    here = "tests.engine.test_step_heartbeats"
    config.write(
        "Slow",
        workflow(
            "Slow",
            f"""
            - name: Quick
              function: {STEPS}.mark
              automate_next: true
            - name: Crunch
              function: {here}.slow
            """,
        ),
    )
    config.write(
        "Background",
        workflow(
            "Background",
            f"""
            - name: Crunch
              type: ASYNC
              function: {here}.slow_in_thread
            """,
        ),
    )
    return config


async def _until(predicate: Any, what: str) -> None:
    for _ in range(3000):
        if await predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def _heartbeat(persistence: PersistenceProvider, workflow_id: str) -> Any:
    beats = await persistence.get_stale_heartbeats(stale_threshold_seconds=-3600)
    return next((beat for beat in beats if beat.workflow_id == workflow_id), None)


async def test_a_long_step_beats_and_its_heartbeat_goes_when_it_ends(
    slow_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = slow_config.builder(persistence, heartbeat_interval_seconds=0.05)
    try:
        wf = await builder.create_workflow("Slow", {"order_id": "H1"})
        running = asyncio.create_task(wf.next_step())

        async def beating() -> bool:
            return await _heartbeat(persistence, wf.id) is not None

        await _until(beating, "a heartbeat of the long step")
        beat = await _heartbeat(persistence, wf.id)
        assert beat.current_step == "Crunch"  # the short step before it wrote none
        assert builder.step_monitor is not None
        assert beat.worker_id == builder.step_monitor.worker_id
        ASYNC_RELEASE.setdefault(wf.id, asyncio.Event()).set()
        await running
        assert wf.status is WorkflowStatus.COMPLETED
        assert await _heartbeat(persistence, wf.id) is None
    finally:
        await builder.close()


async def test_short_steps_write_no_heartbeat(
    config: ConfigDir, persistence: PersistenceProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    original = persistence.upsert_heartbeat

    async def counted(workflow_id: str, *args: Any, **kwargs: Any) -> None:
        writes.append(workflow_id)
        await original(workflow_id, *args, **kwargs)

    monkeypatch.setattr(persistence, "upsert_heartbeat", counted)
    builder = config.builder(persistence)  # the default interval, 30 s
    wf = await builder.create_workflow("Chain", {"order_id": "H2"})
    await wf.run()
    assert wf.status is WorkflowStatus.COMPLETED
    assert writes == []
    await builder.close()


async def test_a_failing_heartbeat_write_does_not_fail_the_step(
    slow_config: ConfigDir, persistence: PersistenceProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    async def broken(workflow_id: str, *args: Any, **kwargs: Any) -> None:
        attempts.append(workflow_id)
        raise ConnectionError("heartbeat table is gone")

    monkeypatch.setattr(persistence, "upsert_heartbeat", broken)
    builder = slow_config.builder(persistence, heartbeat_interval_seconds=0.05)
    try:
        wf = await builder.create_workflow("Slow", {"order_id": "H3"})
        running = asyncio.create_task(wf.next_step())

        async def tried() -> bool:
            return bool(attempts)

        await _until(tried, "a heartbeat attempt")
        ASYNC_RELEASE.setdefault(wf.id, asyncio.Event()).set()
        await running
        assert wf.status is WorkflowStatus.COMPLETED
    finally:
        await builder.close()


async def test_a_background_async_step_beats_until_its_report(
    slow_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    pool = ThreadPoolExecutionProvider(max_workers=1)
    await pool.initialize()
    builder = slow_config.builder(
        persistence, execution_provider=pool, heartbeat_interval_seconds=0.05
    )
    try:
        wf = await builder.create_workflow("Background", {"order_id": "H4"})
        await wf.next_step()
        assert wf.status is WorkflowStatus.PENDING_ASYNC

        async def beating() -> bool:
            return await _heartbeat(persistence, wf.id) is not None

        await _until(beating, "a heartbeat of the background step")
        RELEASE.setdefault(wf.id, threading.Event()).set()

        async def done() -> bool:
            record = await persistence.load_workflow(wf.id)
            return record is not None and record.status == "COMPLETED"

        await _until(done, "the background step's report")
        assert await _heartbeat(persistence, wf.id) is None
    finally:
        RELEASE.setdefault(wf.id, threading.Event()).set()
        await pool.close()
        await builder.close()
