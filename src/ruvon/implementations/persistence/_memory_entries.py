"""Audit entries, execution logs, metrics and heartbeats of the memory provider.

Entries are kept as handed over, with their JSON field (audit data, log metadata, metric tags,
heartbeat metadata) as the JSON text :func:`ruvon.serialization.serialize` wrote, their id and their
time; the returned records are built on read, the JSON parsed afresh each time. The handed-over
record's own JSON field is never read back.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from ruvon.providers import step_log
from ruvon.providers.persistence import AuditEvent, Heartbeat, LogEntry, MetricPoint
from ruvon.serialization import loads, serialize

__all__ = ["MemoryEntries", "json_or_none", "now"]


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def json_or_none(value: Any) -> str | None:
    """``value`` as the codec's JSON text, ``None`` for ``None`` (SQL NULL)."""
    return None if value is None else serialize(value)


def _parsed(data: str | None) -> Any:
    return None if data is None else loads(data)


class MemoryEntries(ABC):
    """The ``AuditLog`` and ``HeartbeatStore`` parts of the memory provider (not public)."""

    def __init__(self) -> None:
        super().__init__()
        self._audit: dict[str, list[tuple[AuditEvent, str | None, int, datetime]]] = {}
        self._logs: dict[str, list[tuple[LogEntry, str | None, int, datetime]]] = {}
        self._metrics: list[tuple[str, MetricPoint, str | None, int, datetime]] = []
        self._heartbeats: dict[str, tuple[Heartbeat, str | None]] = {}
        self._next_id = 0

    @abstractmethod
    def _require(self, workflow_id: str) -> None:
        """Raise :class:`WorkflowNotFoundError` unless the workflow exists."""

    @abstractmethod
    def _workflow_type(self, workflow_id: str) -> str | None:
        """The type of a stored workflow, ``None`` if there is none."""

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _append_entries(
        self,
        workflow_id: str,
        audit: Sequence[tuple[AuditEvent, str | None]],
        metrics: Sequence[tuple[MetricPoint, str | None]],
        logs: Sequence[tuple[LogEntry, str | None]],
        at: datetime,
    ) -> None:
        """Keep the entries of a write (each with its JSON field already serialized)."""
        if audit:
            kept_audit = self._audit.setdefault(workflow_id, [])
            kept_audit.extend((event, data, self._id(), at) for event, data in audit)
        for point, tags in metrics:
            self._metrics.append((workflow_id, point, tags, self._id(), at))
        if logs:
            kept_logs = self._logs.setdefault(workflow_id, [])
            kept_logs.extend((entry, data, self._id(), at) for entry, data in logs)

    def _drop_entries(self, workflow_id: str) -> None:
        """Forget the entries and the heartbeat of a deleted workflow."""
        self._audit.pop(workflow_id, None)
        self._logs.pop(workflow_id, None)
        self._heartbeats.pop(workflow_id, None)
        self._metrics = [entry for entry in self._metrics if entry[0] != workflow_id]

    # -- audit, logs, metrics --------------------------------------------------------------

    async def log_audit_event(self, workflow_id: str, event: AuditEvent) -> None:
        data = json_or_none(event.data)
        self._require(workflow_id)
        self._append_entries(workflow_id, [(event, data)], (), (), now())

    async def get_audit_log(
        self, workflow_id: str, *, event_type: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        events = [
            event
            for event in self._events(workflow_id)
            if event_type is None or event.event_type == event_type
        ]
        return events[: max(limit, 0)]

    def _events(self, workflow_id: str) -> list[AuditEvent]:
        """The audit entries of a workflow as read, in the order written."""
        return [
            dataclasses.replace(
                event, data=_parsed(data), workflow_id=workflow_id, id=entry_id, timestamp=at
            )
            for event, data, entry_id, at in self._audit.get(workflow_id, [])
        ]

    async def log_execution(self, workflow_id: str, entry: LogEntry) -> None:
        metadata = json_or_none(entry.metadata)
        self._require(workflow_id)
        self._append_entries(workflow_id, (), (), [(entry, metadata)], now())

    async def get_execution_logs(
        self,
        workflow_id: str,
        *,
        step_name: str | None = None,
        level: str | None = None,
        limit: int = 50,
    ) -> list[LogEntry]:
        wanted = None if level is None else level.upper()
        entries = [
            dataclasses.replace(
                entry,
                level=entry.level.upper(),
                metadata=_parsed(metadata),
                workflow_id=workflow_id,
                id=entry_id,
                logged_at=at,
            )
            for entry, metadata, entry_id, at in self._logs.get(workflow_id, [])
            if (step_name is None or entry.step_name == step_name)
            and (wanted is None or entry.level.upper() == wanted)
        ]
        if not step_log.wants_step_lines(level):
            return entries[: max(limit, 0)]
        derived = [
            step_log.step_log_entry(event)
            for event in self._events(workflow_id)
            if event.event_type in step_log.STEP_LOG_EVENTS
            and (step_name is None or event.step_name == step_name)
        ]
        return step_log.merge_logs(entries, derived, max(limit, 0))

    async def record_metric(self, workflow_id: str, point: MetricPoint) -> None:
        tags = json_or_none(point.tags)
        self._require(workflow_id)
        self._append_entries(workflow_id, (), [(point, tags)], (), now())

    async def get_workflow_metrics(
        self,
        *,
        workflow_id: str | None = None,
        workflow_type: str | None = None,
        metric_name: str | None = None,
        limit: int = 100,
    ) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        for owner, point, tags, entry_id, at in self._metrics:
            if len(points) >= limit:
                break
            kind = point.workflow_type or self._workflow_type(owner)
            if (
                (workflow_id is None or owner == workflow_id)
                and (workflow_type is None or kind == workflow_type)
                and (metric_name is None or point.metric_name == metric_name)
            ):
                points.append(
                    dataclasses.replace(
                        point,
                        metric_value=float(point.metric_value),
                        tags=_parsed(tags),
                        workflow_id=owner,
                        workflow_type=kind,
                        id=entry_id,
                        recorded_at=at,
                    )
                )
        return points

    # -- heartbeats ------------------------------------------------------------------------

    async def upsert_heartbeat(
        self,
        workflow_id: str,
        worker_id: str,
        current_step: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        data = json_or_none(metadata)
        self._require(workflow_id)
        beat = Heartbeat(workflow_id, worker_id, current_step, last_heartbeat=now())
        self._heartbeats[workflow_id] = (beat, data)

    async def delete_heartbeat(self, workflow_id: str) -> None:
        self._heartbeats.pop(workflow_id, None)

    async def get_stale_heartbeats(self, stale_threshold_seconds: float = 120) -> list[Heartbeat]:
        cutoff = now() - timedelta(seconds=stale_threshold_seconds)
        stale = [
            dataclasses.replace(beat, metadata=_parsed(data))
            for beat, data in self._heartbeats.values()
            if beat.last_heartbeat < cutoff
        ]
        return sorted(stale, key=lambda beat: (beat.last_heartbeat, beat.workflow_id))
