"""The cron schedules of the SQL providers (the ``scheduled_workflows`` table of 0001_init).

The statements are written once in PostgreSQL syntax and rendered per dialect like the rest
(``_sql``). Registering is one upsert that decides in SQL whether to keep the stored
``next_run_at`` (same cron expression, not being re-enabled) so that concurrent registrations
cannot interleave. Claiming a fire time (``mark_schedule_run``) is one conditional UPDATE
``WHERE next_run_at = <the value the runner read>``: on PostgreSQL a concurrent UPDATE of the
row waits for the first one and then re-checks the condition against the new row (READ
COMMITTED), on SQLite writers are serialized by the database's write lock; either way exactly
one claimer of a fire time changes the row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any, ClassVar

from ruvon.implementations.persistence import _sql
from ruvon.providers.persistence import ScheduleRecord, check_aware, check_page
from ruvon.providers.schedules import check_registration, next_fire_time
from ruvon.serialization import serialize

__all__ = ["SQLScheduleStore"]

_COLUMNS = (
    "schedule_name, workflow_type, cron_expression, initial_data, enabled, next_run_at, "
    "last_run_at, run_count, created_at, updated_at"
)
"""The columns read into a :class:`ScheduleRecord`, in its field order."""

_SELECT = f"SELECT {_COLUMNS} FROM scheduled_workflows"

# The stored next_run_at is kept when the expression is the same and the schedule is not being
# enabled again (a paused schedule that resumes skips the fire times it missed).
_REGISTER = f"""INSERT INTO scheduled_workflows (schedule_name, workflow_type, cron_expression,
    initial_data, enabled, next_run_at, run_count, created_at, updated_at)
VALUES ($1::text, $2::text, $3::text, $4::jsonb, $5::boolean, $6::timestamptz, 0, now(), now())
ON CONFLICT (schedule_name) DO UPDATE SET
    workflow_type = excluded.workflow_type,
    cron_expression = excluded.cron_expression,
    initial_data = excluded.initial_data,
    enabled = excluded.enabled,
    next_run_at = CASE
        WHEN scheduled_workflows.cron_expression = excluded.cron_expression
            AND scheduled_workflows.next_run_at IS NOT NULL
            AND (scheduled_workflows.enabled OR NOT excluded.enabled)
        THEN scheduled_workflows.next_run_at
        ELSE excluded.next_run_at END,
    updated_at = excluded.updated_at
RETURNING {_COLUMNS}"""

_DUE = f"""{_SELECT}
WHERE enabled AND next_run_at <= $1::timestamptz
ORDER BY next_run_at, schedule_name LIMIT $2::int4"""

_MARK_RUN = """UPDATE scheduled_workflows
SET next_run_at = $3::timestamptz,
    last_run_at = CASE WHEN $5::boolean THEN $4::timestamptz ELSE last_run_at END,
    run_count = run_count + CASE WHEN $5::boolean THEN 1 ELSE 0 END,
    updated_at = now()
WHERE schedule_name = $1::text AND next_run_at = $2::timestamptz"""
"""Claim fire time ``$2`` of schedule ``$1``: only if nobody advanced it yet."""

_SET_ENABLED = f"""UPDATE scheduled_workflows
SET enabled = $2::boolean,
    next_run_at = CASE WHEN $2::boolean AND NOT enabled THEN $3::timestamptz
                       ELSE next_run_at END,
    updated_at = now()
WHERE schedule_name = $1::text AND cron_expression = $4::text
RETURNING {_COLUMNS}"""
"""Pause or resume ``$1``; ``$3`` (computed from expression ``$4``) is its next fire time if it
resumes. No row: the schedule is gone, or its expression changed since it was read."""


@dataclass(frozen=True, slots=True)
class _Statements:
    register: str
    select_one: str
    select_all: str
    due: str
    mark_run: str
    set_enabled: str
    delete: str


@cache
def _statements(dialect: _sql.Dialect) -> _Statements:
    sql = dialect.sql
    return _Statements(
        register=sql(_REGISTER),
        select_one=sql(f"{_SELECT} WHERE schedule_name = $1"),
        select_all=sql(f"{_SELECT} ORDER BY schedule_name"),
        due=sql(_DUE),
        mark_run=sql(_MARK_RUN),
        set_enabled=sql(_SET_ENABLED),
        delete=sql("DELETE FROM scheduled_workflows WHERE schedule_name = $1"),
    )


def _aware(name: str, moment: datetime) -> datetime:
    check_aware(name, moment)
    return moment


class SQLScheduleStore(ABC):
    """The ``ScheduleStore`` part of the SQL providers (not part of the public API); it runs
    on the primitives the dialect provides (see ``_provider.SQLProvider``)."""

    dialect: ClassVar[_sql.Dialect]

    @abstractmethod
    async def _fetch(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """The rows of a query."""

    @abstractmethod
    async def _execute(
        self, sql: str, args: Sequence[Any], action: str, *, workflow_id: str | None = None
    ) -> int:
        """Run one write statement in its own transaction; return the rows it changed."""

    @abstractmethod
    async def _fetch_write(self, sql: str, args: Sequence[Any], action: str) -> list[Sequence[Any]]:
        """Run one write statement with ``RETURNING`` in its own write transaction."""

    def _schedule(self, row: Sequence[Any]) -> ScheduleRecord:
        d = self.dialect
        initial_data = d.json_in(row[3])
        return ScheduleRecord(
            schedule_name=row[0],
            workflow_type=row[1],
            cron_expression=row[2],
            initial_data=initial_data if initial_data is not None else {},
            enabled=bool(row[4]),
            next_run_at=d.time_in(row[5]),
            last_run_at=d.time_in(row[6]),
            run_count=int(row[7]),
            created_at=d.time_in(row[8]),
            updated_at=d.time_in(row[9]),
        )

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
        """Create or replace a schedule in one upsert; see the Protocol."""
        first_fire = check_registration(schedule_name, workflow_type, cron_expression, now)
        data = serialize(dict(initial_data or {}))
        time_out = self.dialect.time_out
        args = [
            schedule_name,
            workflow_type,
            cron_expression,
            data,
            bool(enabled),
            time_out(first_fire),
        ]
        rows = await self._fetch_write(
            _statements(self.dialect).register, args, f"register schedule '{schedule_name}'"
        )
        return self._schedule(rows[0])

    async def get_scheduled_workflow(self, schedule_name: str) -> ScheduleRecord | None:
        """The schedule, or ``None``."""
        rows = await self._fetch(
            _statements(self.dialect).select_one,
            [schedule_name],
            f"load schedule '{schedule_name}'",
        )
        return self._schedule(rows[0]) if rows else None

    async def list_scheduled_workflows(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        rows = await self._fetch(_statements(self.dialect).select_all, [], "list schedules")
        return [self._schedule(row) for row in rows]

    async def get_due_schedules(self, now: datetime, *, limit: int = 100) -> list[ScheduleRecord]:
        """Enabled schedules due at ``now``, oldest fire time first."""
        check_page(limit, 0)
        args = [self.dialect.time_out(_aware("now", now)), limit]
        rows = await self._fetch(_statements(self.dialect).due, args, "find due schedules")
        return [self._schedule(row) for row in rows]

    async def mark_schedule_run(
        self,
        schedule_name: str,
        *,
        due_at: datetime,
        next_run_at: datetime | None,
        run_at: datetime,
        started: bool = True,
    ) -> bool:
        """Advance the schedule from ``due_at`` if nobody did (one conditional UPDATE)."""
        time_out = self.dialect.time_out
        args = [
            schedule_name,
            time_out(_aware("due_at", due_at)),
            None if next_run_at is None else time_out(_aware("next_run_at", next_run_at)),
            time_out(_aware("run_at", run_at)),
            bool(started),
        ]
        changed = await self._execute(
            _statements(self.dialect).mark_run, args, f"advance schedule '{schedule_name}'"
        )
        return changed > 0

    async def set_schedule_enabled(
        self, schedule_name: str, enabled: bool, *, now: datetime | None = None
    ) -> ScheduleRecord | None:
        """Pause or resume a schedule; see the Protocol."""
        at = datetime.now(timezone.utc) if now is None else _aware("now", now)
        action = f"{'resume' if enabled else 'pause'} schedule '{schedule_name}'"
        # The next fire time is computed from the expression read; a registration changing the
        # expression in between makes the update match nothing, and we read again.
        for _attempt in range(3):
            current = await self.get_scheduled_workflow(schedule_name)
            if current is None:
                return None
            expression = current.cron_expression
            resumes = enabled and not current.enabled
            following = next_fire_time(expression, at) if resumes else None
            args = [schedule_name, bool(enabled), self.dialect.time_out(following), expression]
            rows = await self._fetch_write(_statements(self.dialect).set_enabled, args, action)
            if rows:
                return self._schedule(rows[0])
        return await self.get_scheduled_workflow(schedule_name)

    async def delete_scheduled_workflow(self, schedule_name: str) -> bool:
        """Delete a schedule. False if there was none."""
        sql = _statements(self.dialect).delete
        return await self._execute(sql, [schedule_name], f"delete schedule '{schedule_name}'") > 0
