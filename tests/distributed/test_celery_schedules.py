"""Schedules fired from the worker deployment: Celery beat sends ``ruvon.fire_due_schedules``
on its interval and a worker starts the workflows of the due schedules, once each."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .conftest import Deployment, eventually


def _beat(deployment: Deployment, interval: float) -> tuple[subprocess.Popen[bytes], Path]:
    env = {**deployment.env(), "RUVON_SCHEDULE_INTERVAL": str(interval)}
    log = deployment.root / "beat.log"
    schedule_file = deployment.root / "celerybeat-schedule"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ruvon.celery_app", "beat", "-l", "INFO",
             "--schedule", str(schedule_file)],
            cwd=deployment.root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, log


async def test_beat_fires_due_schedules_through_a_worker(deployment: Deployment) -> None:
    # Beat sends its ticks to the default queue: the worker listens there.
    deployment.start_worker("default", deployment.queue, deployment.notify_queue)
    async with deployment.builder() as builder:
        store = builder.persistence_provider
        assert store is not None
        await store.initialize()  # the builder closes only what it opened: closed below
        past = datetime.now(timezone.utc) - timedelta(minutes=2)
        await store.register_scheduled_workflow(
            "orders-every-minute", "AsyncOrder", "* * * * *", {"order_id": "S-1"}, now=past
        )
        beat, log = _beat(deployment, interval=0.5)
        try:

            async def started() -> bool:
                return bool(await store.list_workflows(workflow_type="AsyncOrder"))

            await eventually(started, timeout=60, what="beat to start the scheduled run")
            runs = await store.list_workflows(workflow_type="AsyncOrder")
            await eventually(
                lambda: _all_completed(store, [run.id for run in runs]), what="the run"
            )
            schedule = await store.get_scheduled_workflow("orders-every-minute")
            assert schedule is not None and schedule.run_count == 1, log.read_text()
            # One run for the one due fire time, however many ticks came meanwhile.
            assert len(await store.list_workflows(workflow_type="AsyncOrder")) == 1
        finally:
            beat.terminate()
            beat.wait(timeout=30)
            await store.close()


async def _all_completed(store, ids: list[str]) -> bool:  # type: ignore[no-untyped-def]
    records = [await store.load_workflow(workflow_id) for workflow_id in ids]
    return all(record is not None and record.status == "COMPLETED" for record in records)
