"""The engine's own heartbeat: proof of life for every step that runs long, and no write at all
for the steps that do not.

Each running step is registered with a :class:`StepMonitor` when it starts and removed when it
ends (a dict insert and delete). One asyncio task per monitor wakes up every half interval and
writes a heartbeat (``PersistenceProvider.upsert_heartbeat``) for each step that has been
running for at least ``interval_seconds``, and again every interval while it runs; when such a
step ends, its heartbeat row is deleted. So a step shorter than the interval (W5's five steps,
most steps) costs no database write, and a step that outlives it is visible to the
:class:`~ruvon.zombie_scanner.ZombieScanner`: a worker that dies in the middle of a long step
leaves a heartbeat that goes stale.

The same write renews the lease its driver holds on the run (``ruvon.lease``): a short step
lives on the lease its call claimed or its previous commit renewed, a long one is renewed
every half interval.

A step that runs elsewhere in the background (an ASYNC step on the thread pool) is registered
from its dispatch until its report is applied. A failing heartbeat write is logged and never
fails the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ruvon.heartbeat import default_worker_id
from ruvon.lease import RunLease
from ruvon.providers.persistence import PersistenceProvider

__all__ = ["StepMonitor", "default_worker_id"]

logger = logging.getLogger("ruvon.heartbeat")


@dataclass(slots=True, eq=False)
class RunningStep:
    """One registered step (identity matters: a workflow may run the same step again)."""

    persistence: PersistenceProvider
    workflow_id: str
    step_name: str
    started: float = field(default_factory=time.monotonic)
    beating: bool = False
    """True once a heartbeat row was written for it."""
    lease: RunLease | None = None
    """The lease its driver holds on the run, renewed with each heartbeat."""


class StepMonitor:
    """Writes heartbeats for the steps of this process that outlive ``interval_seconds``."""

    def __init__(self, interval_seconds: float = 30.0, worker_id: str | None = None) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds!r}")
        self.interval_seconds = float(interval_seconds)
        self.worker_id = worker_id or default_worker_id()
        self._running: dict[int, RunningStep] = {}
        self._task: asyncio.Task[None] | None = None

    def enter(
        self,
        persistence: PersistenceProvider,
        workflow_id: str,
        step_name: str,
        lease: RunLease | None = None,
    ) -> RunningStep:
        """Register a step that starts now (run under ``lease``, renewed with its heartbeats);
        give the result to :meth:`leave`."""
        step = RunningStep(persistence, workflow_id, step_name, lease=lease)
        self._running[id(step)] = step
        task = self._task
        if task is None or task.done():
            self._start()
        return step

    def leave(self, step: RunningStep) -> bool:
        """Unregister ``step``. True when it has a heartbeat row: then await :meth:`forget`."""
        self._running.pop(id(step), None)
        return step.beating

    async def forget(self, step: RunningStep) -> None:
        """Delete the heartbeat row of a step that ended (failures are logged)."""
        try:
            await step.persistence.delete_heartbeat(step.workflow_id)
        except Exception:
            logger.warning(
                "Deleting the heartbeat of workflow %s failed", step.workflow_id, exc_info=True
            )

    @property
    def running(self) -> list[RunningStep]:
        """The steps registered now."""
        return list(self._running.values())

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - enter() is called from the engine's loop
            return
        self._task = loop.create_task(self._beat(), name="ruvon-step-monitor")

    async def _beat(self) -> None:
        """Every half interval: a heartbeat for each step running for an interval or more;
        stops when nothing is registered (the next step starts it again)."""
        tick = self.interval_seconds / 2
        while self._running:
            await asyncio.sleep(tick)
            due = time.monotonic() - self.interval_seconds
            for step in list(self._running.values()):
                if step.started <= due and id(step) in self._running:
                    await self._write(step)

    async def _write(self, step: RunningStep) -> None:
        try:
            await step.persistence.upsert_heartbeat(
                step.workflow_id,
                self.worker_id,
                current_step=step.step_name,
                metadata=_metadata(step),
            )
        except Exception:
            logger.warning(
                "Heartbeat of workflow %s (step %s) failed",
                step.workflow_id,
                step.step_name,
                exc_info=True,
            )
            return
        if id(step) in self._running:
            step.beating = True
            await self._renew(step)
        else:  # it ended while the write was on its way: the row is stale at once
            await self.forget(step)

    async def _renew(self, step: RunningStep) -> None:
        """Renew the lease of a long step with its heartbeat (no version change). A lease that
        is gone (another driver took the run) stays gone: the step's commit will be refused."""
        lease = step.lease
        if lease is None or not lease.held:
            return
        try:
            end = await step.persistence.renew_lease(step.workflow_id, lease.owner, lease.seconds)
        except Exception:
            logger.warning("Renewing the lease of workflow %s failed", step.workflow_id)
            return
        if end is None:
            lease.released()
        else:
            lease.granted(end)

    async def close(self) -> None:
        """Stop the monitor's task (the builder does this when it closes)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task


def _metadata(step: RunningStep) -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "running_seconds": round(time.monotonic() - step.started, 3),
        "at": datetime.now(timezone.utc).isoformat(),
    }
