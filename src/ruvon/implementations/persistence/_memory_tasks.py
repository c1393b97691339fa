"""The task queue of the memory provider, in a dictionary.

Like every JSON value of the memory provider, a task's ``task_data`` and ``result`` are kept as
the JSON text :func:`ruvon.serialization.serialize` wrote and parsed on every read, exactly as
the SQL stores keep JSON text. Each method runs without an ``await``, which makes it atomic on
the event loop: two claims never take the same task.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ruvon.errors import TaskNotFoundError
from ruvon.providers.persistence import TaskRecord, check_task_status
from ruvon.serialization import loads, serialize

__all__ = ["MemoryTaskQueue"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _claimable(task: TaskRecord, worker_id: str, now: datetime, stale_after: float) -> bool:
    """Whether ``worker_id`` may claim ``task`` at ``now``: it is PENDING, or CLAIMED/RUNNING
    by ``worker_id`` itself or by a worker that has not renewed it for ``stale_after`` s."""
    if task.status == "PENDING":
        return True
    if task.status not in ("CLAIMED", "RUNNING"):
        return False
    if task.worker_id == worker_id:
        return True
    renewed = task.updated_at
    return renewed is not None and now - renewed > timedelta(seconds=stale_after)


@dataclass(frozen=True, slots=True)
class _StoredTask:
    """A task as kept: the record without its JSON values, and those as the codec wrote them."""

    record: TaskRecord
    task_data: str
    result: str | None

    def load(self) -> TaskRecord:
        """The task as returned: a fresh record with fresh JSON values."""
        return dataclasses.replace(
            self.record,
            task_data=loads(self.task_data),
            result=None if self.result is None else loads(self.result),
        )


class MemoryTaskQueue(ABC):
    """The ``TaskQueue`` part of the memory provider (not part of the public API)."""

    def __init__(self) -> None:
        self._tasks: dict[str, _StoredTask] = {}
        self._task_keys: dict[str, str] = {}

    @abstractmethod
    def _require(self, workflow_id: str) -> None:
        """Raise :class:`WorkflowNotFoundError` unless the workflow exists."""

    def _drop_tasks(self, workflow_id: str) -> None:
        """Forget the tasks of a deleted workflow (and free their idempotency keys)."""
        doomed = [
            task_id
            for task_id, kept in self._tasks.items()
            if kept.record.execution_id == workflow_id
        ]
        for task_id in doomed:
            key = self._tasks.pop(task_id).record.idempotency_key
            if key is not None:
                self._task_keys.pop(key, None)

    async def create_task_record(
        self,
        execution_id: str,
        step_name: str,
        step_index: int,
        *,
        task_data: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_retries: int = 3,
    ) -> TaskRecord:
        """Queue a PENDING task; a taken idempotency key returns the task holding it."""
        data = serialize(task_data or {})
        if idempotency_key is not None and idempotency_key in self._task_keys:
            return self._tasks[self._task_keys[idempotency_key]].load()
        self._require(execution_id)
        now = _now()
        task = TaskRecord(
            task_id=str(uuid.uuid4()),
            execution_id=execution_id,
            step_name=step_name,
            step_index=step_index,
            status="PENDING",
            max_retries=max_retries,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        stored = self._tasks[task.task_id] = _StoredTask(task, data, None)
        if idempotency_key is not None:
            self._task_keys[idempotency_key] = task.task_id
        return stored.load()

    async def claim_next_task(
        self, worker_id: str, *, step_name: str | None = None
    ) -> TaskRecord | None:
        """Atomically take the oldest PENDING task (of ``step_name``, if given)."""
        # No await between finding the task and taking it: atomic on the event loop.
        waiting = [
            kept
            for kept in self._tasks.values()
            if kept.record.status == "PENDING"
            and (step_name is None or kept.record.step_name == step_name)
        ]
        if not waiting:
            return None
        # min() keeps the first of equal times: insertion order breaks ties.
        oldest = min(waiting, key=lambda kept: kept.record.created_at or _now())
        now = _now()
        claimed = dataclasses.replace(
            oldest,
            record=dataclasses.replace(
                oldest.record,
                status="CLAIMED",
                worker_id=worker_id,
                claimed_at=now,
                updated_at=now,
            ),
        )
        self._tasks[claimed.record.task_id] = claimed
        return claimed.load()

    async def claim_task(
        self, task_id: str, worker_id: str, *, stale_after_seconds: float
    ) -> TaskRecord | None:
        """Take task ``task_id`` for ``worker_id`` (or renew its claim); ``None`` when a live
        worker holds it or it is finished or unknown. See the Protocol."""
        if not 0 < stale_after_seconds < math.inf:
            raise ValueError(
                f"stale_after_seconds must be a positive number, got {stale_after_seconds!r}."
            )
        # No await between the check and the write: atomic on the event loop.
        kept = self._tasks.get(task_id)
        now = _now()
        if kept is None or not _claimable(kept.record, worker_id, now, stale_after_seconds):
            return None
        task = kept.record
        renewal = task.status != "PENDING" and task.worker_id == worker_id
        claimed = dataclasses.replace(
            kept,
            record=dataclasses.replace(
                task,
                status="RUNNING",
                worker_id=worker_id,
                claimed_at=(task.claimed_at or now) if renewal else now,
                started_at=task.started_at or now,
                updated_at=now,
            ),
        )
        self._tasks[task_id] = claimed
        return claimed.load()

    async def update_task_status(
        self,
        task_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error_message: str | None = None,
    ) -> TaskRecord:
        """Set a task's status (and its timestamps, retry count, result and error)."""
        check_task_status(status)
        encoded = None if result is None else serialize(result)
        kept = self._tasks.get(task_id)
        if kept is None:
            raise TaskNotFoundError(task_id)
        task = kept.record
        now = _now()
        updated = _StoredTask(
            dataclasses.replace(
                task,
                status=status,
                started_at=now if status == "RUNNING" else task.started_at,
                completed_at=now if status in ("COMPLETED", "FAILED") else task.completed_at,
                retry_count=task.retry_count + (1 if status == "FAILED" else 0),
                last_error=task.last_error if error_message is None else error_message,
                updated_at=now,
            ),
            kept.task_data,
            kept.result if encoded is None else encoded,
        )
        self._tasks[task_id] = updated
        return updated.load()

    async def get_task_record(self, task_id: str) -> TaskRecord | None:
        """The stored task, or ``None``."""
        kept = self._tasks.get(task_id)
        return None if kept is None else kept.load()
