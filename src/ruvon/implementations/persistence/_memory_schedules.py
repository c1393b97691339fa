"""The cron schedules of the memory provider, in a dictionary keyed by schedule name.

Like every JSON value of the memory provider, a schedule's ``initial_data`` is kept as the JSON
text :func:`ruvon.serialization.serialize` wrote and parsed on every read. Each method runs
without an ``await``, which makes it atomic on the event loop: of concurrent
``mark_schedule_run`` calls for one fire time exactly one advances the schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ruvon.providers.persistence import ScheduleRecord, check_aware, check_page
from ruvon.providers.schedules import check_registration, next_fire_time
from ruvon.serialization import loads, serialize

__all__ = ["MemoryScheduleStore"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(name: str, moment: datetime) -> datetime:
    """``moment`` in UTC, or ``ValueError`` naming ``name`` if it is naive."""
    check_aware(name, moment)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class _StoredSchedule:
    """A schedule as kept: the record without its initial data, and that as the codec wrote it."""

    record: ScheduleRecord
    initial_data: str

    def load(self) -> ScheduleRecord:
        """The schedule as returned: a fresh record with fresh initial data."""
        return dataclasses.replace(self.record, initial_data=loads(self.initial_data))


class MemoryScheduleStore:
    """The ``ScheduleStore`` part of the memory provider (not part of the public API)."""

    def __init__(self) -> None:
        super().__init__()
        self._schedules: dict[str, _StoredSchedule] = {}

    async def register_scheduled_workflow(
        self,
        schedule_name: str,
        workflow_type: str,
        cron_expression: str,
        initial_data: Mapping[str, Any] | None = None,
        enabled: bool = True,
        *,
        now: datetime | None = None,
    ) -> ScheduleRecord:
        """Create or replace a schedule; see the Protocol."""
        first_fire = check_registration(schedule_name, workflow_type, cron_expression, now)
        at = _now() if now is None else _utc("now", now)
        data = serialize(dict(initial_data or {}))
        kept = self._schedules.get(schedule_name)
        old = None if kept is None else kept.record
        keep_next = (
            old is not None
            and old.cron_expression == cron_expression
            and old.next_run_at is not None
            and (old.enabled or not enabled)
        )
        record = ScheduleRecord(
            schedule_name=schedule_name,
            workflow_type=workflow_type,
            cron_expression=cron_expression,
            enabled=enabled,
            next_run_at=old.next_run_at if keep_next and old is not None else first_fire,
            last_run_at=None if old is None else old.last_run_at,
            run_count=0 if old is None else old.run_count,
            created_at=at if old is None else old.created_at,
            updated_at=at,
        )
        stored = self._schedules[schedule_name] = _StoredSchedule(record, data)
        return stored.load()

    async def get_scheduled_workflow(self, schedule_name: str) -> ScheduleRecord | None:
        """The schedule, or ``None``."""
        kept = self._schedules.get(schedule_name)
        return None if kept is None else kept.load()

    async def list_scheduled_workflows(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        return [self._schedules[name].load() for name in sorted(self._schedules)]

    async def get_due_schedules(self, now: datetime, *, limit: int = 100) -> list[ScheduleRecord]:
        """Enabled schedules due at ``now``, oldest fire time first."""
        at = _utc("now", now)
        check_page(limit, 0)
        due = [
            kept
            for kept in self._schedules.values()
            if kept.record.enabled
            and kept.record.next_run_at is not None
            and kept.record.next_run_at <= at
        ]
        due.sort(key=lambda kept: (kept.record.next_run_at, kept.record.schedule_name))
        return [kept.load() for kept in due[:limit]]

    async def mark_schedule_run(
        self,
        schedule_name: str,
        *,
        due_at: datetime,
        next_run_at: datetime | None,
        run_at: datetime,
        started: bool = True,
    ) -> bool:
        """Advance the schedule from ``due_at`` if nobody did; see the Protocol."""
        due = _utc("due_at", due_at)
        following = None if next_run_at is None else _utc("next_run_at", next_run_at)
        ran = _utc("run_at", run_at)
        kept = self._schedules.get(schedule_name)
        if kept is None or kept.record.next_run_at != due:
            return False
        old = kept.record
        record = dataclasses.replace(
            old,
            next_run_at=following,
            last_run_at=ran if started else old.last_run_at,
            run_count=old.run_count + (1 if started else 0),
            updated_at=_now(),
        )
        self._schedules[schedule_name] = _StoredSchedule(record, kept.initial_data)
        return True

    async def set_schedule_enabled(
        self, schedule_name: str, enabled: bool, *, now: datetime | None = None
    ) -> ScheduleRecord | None:
        """Pause or resume a schedule; see the Protocol."""
        at = _now() if now is None else _utc("now", now)
        kept = self._schedules.get(schedule_name)
        if kept is None:
            return None
        old = kept.record
        resumed = enabled and not old.enabled
        record = dataclasses.replace(
            old,
            enabled=enabled,
            next_run_at=next_fire_time(old.cron_expression, at) if resumed else old.next_run_at,
            updated_at=at,
        )
        stored = self._schedules[schedule_name] = _StoredSchedule(record, kept.initial_data)
        return stored.load()

    async def delete_scheduled_workflow(self, schedule_name: str) -> bool:
        """Delete a schedule. False if there was none."""
        return self._schedules.pop(schedule_name, None) is not None
