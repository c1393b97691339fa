"""A live stream of workflow status changes, for pages and scripts that follow runs without
polling (the REST server's ``GET /api/v1/events`` is made of it).

:class:`WorkflowEventStream` is an observer: give it to the builder (alone or in a
:class:`~ruvon.implementations.observability.composite.CompositeObserver`) and every status
change committed *through that builder* (this process) is published to the subscribers::

    stream = WorkflowEventStream()
    builder = WorkflowBuilder(config_dir="config", observer=stream)
    async with stream.subscribe() as events:
        async for event in events:
            print(event.workflow_id, event.new_status)

Each subscriber has a bounded queue; a subscriber that falls behind loses its oldest events
(and is told how many with ``dropped``) instead of slowing the engine down.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["WorkflowEvent", "WorkflowEventStream"]


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """One committed status change."""

    id: int
    workflow_id: str
    old_status: str
    new_status: str
    current_step: str | None
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    dropped: int = 0
    """Events this subscriber lost since the one it took before (its queue was full)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


class _Subscriber:
    def __init__(self, capacity: int, workflow_id: str | None) -> None:
        self.queue: asyncio.Queue[WorkflowEvent] = asyncio.Queue(capacity)
        self.workflow_id = workflow_id
        self.dropped = 0

    def offer(self, event: WorkflowEvent) -> None:
        if self.workflow_id is not None and event.workflow_id != self.workflow_id:
            return
        if self.queue.full():
            self.queue.get_nowait()  # the oldest goes
            self.dropped += 1
        self.queue.put_nowait(event)

    async def take(self) -> WorkflowEvent:
        """The next event, telling how many were lost since the one taken before."""
        event = await self.queue.get()
        if self.dropped:
            event = dataclasses.replace(event, dropped=self.dropped)
            self.dropped = 0
        return event


class WorkflowEventStream:
    """Publishes committed status changes to subscribers (see the module)."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity!r}")
        self.capacity = capacity
        self._subscribers: set[_Subscriber] = set()
        self._ids = itertools.count(1)

    @property
    def subscribers(self) -> int:
        """How many subscribers listen now."""
        return len(self._subscribers)

    async def on_workflow_status_changed(
        self,
        workflow_id: str,
        old_status: str,
        new_status: str,
        current_step_name: str | None,
    ) -> None:
        self.publish(workflow_id, old_status, new_status, current_step_name)

    def publish(
        self, workflow_id: str, old_status: str, new_status: str, current_step: str | None
    ) -> WorkflowEvent:
        """Publish one status change (the observer hook does; so may your code)."""
        event = WorkflowEvent(next(self._ids), workflow_id, old_status, new_status, current_step)
        for subscriber in list(self._subscribers):
            subscriber.offer(event)
        return event

    @contextlib.asynccontextmanager
    async def subscribe(
        self, workflow_id: str | None = None
    ) -> AsyncIterator[AsyncIterator[WorkflowEvent]]:
        """The events published from now on (of ``workflow_id`` only, if given), until the
        block ends."""
        subscriber = _Subscriber(self.capacity, workflow_id)
        self._subscribers.add(subscriber)

        async def events() -> AsyncIterator[WorkflowEvent]:
            while True:
                yield await subscriber.take()

        try:
            yield events()
        finally:
            self._subscribers.discard(subscriber)
