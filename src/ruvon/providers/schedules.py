"""The schedule part of the persistence contract: cron schedules that start workflows.

A store keeps one row per schedule name (``scheduled_workflows``). The rule every
implementation must keep: :meth:`ScheduleStore.mark_schedule_run` advances a schedule only if its
``next_run_at`` is still the value the caller read, atomically, so that of several runners (in
one process or many) exactly one advances each fire time. :mod:`ruvon.scheduler` builds its
exactly-once guarantee on that and on the workflows' idempotency keys.

Cron expressions are croniter's (5 fields, an optional sixth for seconds; ``@daily`` and the
like) and are evaluated in UTC. :func:`next_fire_time` and :func:`check_cron_expression` are the
checks every store applies alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from ruvon.providers.records import ScheduleRecord, check_aware

__all__ = [
    "ScheduleRecord",
    "ScheduleStore",
    "check_cron_expression",
    "check_registration",
    "next_fire_time",
]


def next_fire_time(cron_expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (timezone-aware) that ``cron_expression``
    names, in UTC.

    Raises ``ValueError`` naming the expression if it is not a valid cron expression or never
    fires (e.g. ``0 0 30 2 *``, February 30th), and for a naive ``after``.
    """
    # Imported here: ``import ruvon`` stays free of it until a schedule is used.
    from croniter import CroniterError, croniter

    check_aware("after", after)
    if not isinstance(cron_expression, str) or not cron_expression.strip():
        raise ValueError(f"Invalid cron expression {cron_expression!r}: it is empty.")
    start = after.astimezone(timezone.utc)
    try:
        moment = croniter(cron_expression, start).get_next(datetime)
    except (CroniterError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"Invalid cron expression {cron_expression!r}: {exc}") from None
    if not isinstance(moment, datetime):  # pragma: no cover - croniter's contract
        raise ValueError(f"Invalid cron expression {cron_expression!r}.")
    return moment.astimezone(timezone.utc)


def check_cron_expression(cron_expression: str) -> str:
    """``cron_expression`` if it is valid and fires at some time, else ``ValueError``."""
    next_fire_time(cron_expression, datetime.now(timezone.utc))
    return cron_expression


def check_registration(
    schedule_name: str, workflow_type: str, cron_expression: str, now: datetime | None
) -> datetime:
    """The arguments of ``register_scheduled_workflow`` checked alike in every store: the
    schedule's first fire time after ``now`` (default: the current time), or ``ValueError``
    naming what is wrong."""
    for name, value in (("schedule_name", schedule_name), ("workflow_type", workflow_type)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, not {value!r}.")
    check_aware("now", now)
    return next_fire_time(cron_expression, now or datetime.now(timezone.utc))


@runtime_checkable
class ScheduleStore(Protocol):
    """Cron schedules: register (upsert by name), read, claim a fire time, pause, delete.

    Every time is timezone-aware and returned in UTC; a naive datetime argument is a
    ``ValueError`` naming it. ``initial_data`` goes through the one codec like every JSON value
    (a value it cannot serialize raises its ``TypeError`` and nothing is written).
    """

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
        """Create or replace the schedule ``schedule_name`` and return it as stored.

        An invalid cron expression raises ``ValueError`` naming it, and nothing is stored.
        ``next_run_at`` becomes the first fire time after ``now`` (default: the current time)
        for a new schedule, a changed ``cron_expression`` or a schedule being enabled again;
        otherwise it is kept, so registering the same schedule again (as a CRON_SCHEDULE step
        does on every run) neither delays nor repeats a fire. ``run_count``, ``last_run_at``
        and ``created_at`` are kept.
        """
        ...

    async def get_scheduled_workflow(self, schedule_name: str) -> ScheduleRecord | None:
        """The schedule, or ``None``."""
        ...

    async def list_scheduled_workflows(self) -> list[ScheduleRecord]:
        """Every schedule, enabled or not, by name."""
        ...

    async def get_due_schedules(self, now: datetime, *, limit: int = 100) -> list[ScheduleRecord]:
        """Enabled schedules whose ``next_run_at`` is ``now`` or earlier, oldest fire time
        first (then by name), at most ``limit``."""
        ...

    async def mark_schedule_run(
        self,
        schedule_name: str,
        *,
        due_at: datetime,
        next_run_at: datetime | None,
        run_at: datetime,
        started: bool = True,
    ) -> bool:
        """Claim the fire time ``due_at``: atomically, and only if the schedule's
        ``next_run_at`` is still ``due_at``, set it to ``next_run_at`` and — if ``started``
        (a workflow was started for the fire) — set ``last_run_at`` to ``run_at`` and add one
        to ``run_count``. Return whether this call advanced it (False: another runner did, or
        the schedule changed or is gone). Of concurrent calls for one fire time, in any
        processes, exactly one returns True.
        """
        ...

    async def set_schedule_enabled(
        self, schedule_name: str, enabled: bool, *, now: datetime | None = None
    ) -> ScheduleRecord | None:
        """Pause (``False``) or resume (``True``) a schedule; return it, or ``None`` if there is
        none. Resuming a paused schedule sets ``next_run_at`` to its first fire time after
        ``now`` (default: the current time): fire times missed while paused are skipped."""
        ...

    async def delete_scheduled_workflow(self, schedule_name: str) -> bool:
        """Delete a schedule (the workflows it started stay). False if there was none."""
        ...
