"""``HeartbeatManager``: proof of life for one workflow while this process works on it.

While the manager runs, a background asyncio task writes the workflow's heartbeat row
(``PersistenceProvider.upsert_heartbeat``: worker id, step, time, metadata) every
``heartbeat_interval_seconds``; stopping it cancels the task and deletes the row. If the process
dies, the row stops changing and the :class:`~ruvon.zombie_scanner.ZombieScanner` finds it
stale. Use it around work the engine does not beat for itself, e.g. a worker running a long
task for a workflow::

    async with HeartbeatManager(store, workflow_id, heartbeat_interval_seconds=15) as beat:
        await beat.set_step("Charge")  # optional: name what runs now
        ...

A heartbeat write that fails is logged (WARNING, after ``retry_attempts`` tries) and never
raised: losing a beat must not fail the work it vouches for. (The engine's own heartbeat for
long steps is ``ruvon.step_monitor``; this is the same row, one per workflow.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timezone
from typing import Any

from ruvon.providers.persistence import HeartbeatStore

__all__ = ["HeartbeatManager", "default_worker_id"]

logger = logging.getLogger("ruvon.heartbeat")


def default_worker_id() -> str:
    """``<hostname>-<pid>-<8 hex>``: this process, told apart from its restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class HeartbeatManager:
    """Keeps one workflow's heartbeat row fresh until stopped.

    Args:
        persistence: The store holding the heartbeat rows.
        workflow_id: The workflow this process works on.
        worker_id: Who beats. Default :func:`default_worker_id`.
        heartbeat_interval_seconds: Seconds between writes. Default 30; keep it well under the
            scanner's ``stale_threshold_seconds`` (default 120, see docs/crash-recovery.md).
            ``interval_seconds`` is accepted as an alias.
        retry_attempts: Tries per heartbeat before it is given up (logged). Default 3.
        retry_delay_seconds: Seconds between those tries. Default 5 (never more than the
            interval).
    """

    def __init__(
        self,
        persistence: HeartbeatStore,
        workflow_id: str,
        worker_id: str | None = None,
        heartbeat_interval_seconds: float = 30.0,
        retry_attempts: int = 3,
        retry_delay_seconds: float = 5.0,
        *,
        interval_seconds: float | None = None,
    ) -> None:
        interval = heartbeat_interval_seconds if interval_seconds is None else interval_seconds
        if interval <= 0:
            raise ValueError(f"heartbeat_interval_seconds must be > 0, got {interval!r}")
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts!r}")
        if retry_delay_seconds < 0:
            raise ValueError(f"retry_delay_seconds must be >= 0, got {retry_delay_seconds!r}")
        self.persistence = persistence
        self.workflow_id = workflow_id
        self.worker_id = worker_id or default_worker_id()
        self.heartbeat_interval_seconds = float(interval)
        self.retry_attempts = retry_attempts
        self.retry_delay_seconds = min(float(retry_delay_seconds), self.heartbeat_interval_seconds)
        self.current_step: str | None = None
        self.metadata: dict[str, Any] = {}
        self.beats = 0
        """Heartbeats written so far."""
        self.failures = 0
        """Heartbeats given up so far (each logged)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._task is not None

    async def start(
        self, current_step: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        """Write the first heartbeat now, then one every interval in the background.

        ``metadata`` is stored with every heartbeat, together with ``hostname``, ``pid`` and
        ``started_at``. Raises ``RuntimeError`` if the manager runs already.
        """
        if self._task is not None:
            raise RuntimeError(f"The heartbeat of workflow {self.workflow_id} runs already.")
        self.current_step = current_step
        self.metadata = {
            **(metadata or {}),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": datetime.now(timezone.utc).isoformat(),
        }
        self._task = asyncio.get_running_loop().create_task(
            self._beat(), name=f"ruvon-heartbeat-{self.workflow_id}"
        )
        await self.beat()

    async def set_step(self, current_step: str | None) -> None:
        """Name the step in progress, written at once (and with every heartbeat after)."""
        self.current_step = current_step
        if self._task is not None:
            await self.beat()

    async def beat(self) -> bool:
        """Write one heartbeat now; False (logged) if every try failed."""
        for attempt in range(1, self.retry_attempts + 1):
            try:
                await self.persistence.upsert_heartbeat(
                    self.workflow_id, self.worker_id, self.current_step, self.metadata
                )
            except Exception as exc:
                if attempt < self.retry_attempts:
                    await asyncio.sleep(self.retry_delay_seconds)
                    continue
                self.failures += 1
                logger.warning(
                    "Heartbeat of workflow %s (worker %s) failed %d time(s): %s: %s",
                    self.workflow_id,
                    self.worker_id,
                    self.retry_attempts,
                    type(exc).__name__,
                    exc,
                )
                return False
            self.beats += 1
            return True
        return False  # pragma: no cover - the loop always returns

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_seconds)
            await self.beat()

    async def stop(self) -> None:
        """Stop beating and delete the heartbeat row (a failure to delete is logged: the row
        then goes stale, and the scanner ignores it once the workflow is not running)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await self.persistence.delete_heartbeat(self.workflow_id)
        except Exception as exc:
            logger.warning(
                "Deleting the heartbeat of workflow %s failed: %s: %s",
                self.workflow_id,
                type(exc).__name__,
                exc,
            )

    async def __aenter__(self) -> HeartbeatManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
