"""Cron schedules: :class:`ScheduleRunner` starts the workflows of due schedules.

A schedule (``register_scheduled_workflow`` on the store, or a ``CRON_SCHEDULE`` step) names a
workflow type, a cron expression (UTC) and initial data. A runner asks the store for the enabled
schedules whose ``next_run_at`` has come (:meth:`ScheduleRunner.run_once`), starts a workflow
for each and runs its first step, and advances the schedule. Run one or several runners
(``run_forever``) in any number of processes on the same database.

**Exactly once.** For each fire time of a schedule, exactly one workflow is started and its
first step runs once, however many runners race and wherever one of them crashes:

1. The workflow is created with the idempotency key ``schedule:<name>:<fire time, ISO UTC>``.
   The store holds a key once (unique index), so a fire time can never have two workflows:
   a runner that comes second, or retries after a crash, gets the existing workflow back.
2. Only the runner whose call actually inserted the workflow (it passes a fresh workflow id
   and gets that id back) runs the first step (unless the definition's ``automate_start`` did
   already). A crash between creating the workflow and running its first step leaves the
   workflow ACTIVE at its first step, like any run interrupted between steps.
3. Then the schedule is advanced with ``mark_schedule_run``, a conditional UPDATE that changes
   the row only while ``next_run_at`` is still the fire time the runner read (SQLite
   serializes writers; PostgreSQL re-checks the condition after a concurrent UPDATE), so of
   all racers exactly one advances it and counts the run. A runner that crashes after
   creating the workflow and before advancing leaves the schedule due: the next tick finds
   the workflow by its key and advances the schedule, so no fire time is lost.

**Missed fire times.** After downtime (or a pause of the runners) a schedule whose
``next_run_at`` lies in the past fires *once*, for that oldest missed fire time, and then jumps
to its first fire time after now; the fire times in between are skipped, not caught up. A
schedule paused with ``set_schedule_enabled(name, False)`` and resumed skips the fire times it
missed while paused (resuming sets ``next_run_at`` to the first fire time after then).

**Bad schedules** never stop the runner. A schedule whose workflow type is unknown, whose
definition is invalid or whose initial data does not validate is logged (ERROR, with the
schedule's name) and advanced without counting a run; so is one whose stored cron expression
is invalid (its ``next_run_at`` becomes empty until it is registered again). A first step that
fails is logged and leaves its workflow FAILED, as any failed step does. Only a store error
(e.g. the database is unreachable) leaves the schedule due, to be tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ruvon.errors import IdempotencyConflictError, PersistenceError
from ruvon.models import WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider, ScheduleRecord, check_aware
from ruvon.providers.schedules import next_fire_time

if TYPE_CHECKING:
    from ruvon.builder import WorkflowBuilder
    from ruvon.workflow import Workflow

__all__ = ["ScheduleRunner", "ScheduledRun", "schedule_idempotency_key"]

logger = logging.getLogger("ruvon.scheduler")


def schedule_idempotency_key(schedule_name: str, fire_time: datetime) -> str:
    """The idempotency key of the workflow a schedule starts for ``fire_time``."""
    check_aware("fire_time", fire_time)
    moment = fire_time.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return f"schedule:{schedule_name}:{moment}"


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """A workflow that :meth:`ScheduleRunner.run_once` started for a schedule's fire time."""

    schedule_name: str
    fire_time: datetime
    """The fire time the workflow was started for (UTC)."""
    workflow_id: str
    status: str
    """The workflow's status after its first step (e.g. ACTIVE, COMPLETED, FAILED)."""
    error: str | None = None
    """Why the first step failed, if it did (the workflow is then FAILED)."""


class ScheduleRunner:
    """Starts the workflows of due schedules; see the module's documentation.

    Args:
        builder: Creates the workflows (it knows the workflow types and their files).
        persistence: The store holding the schedules and the workflows. Default: the
            builder's persistence provider.
        batch_size: The most due schedules read at once; a full batch is followed by another
            in the same :meth:`run_once`. Default 100.
    """

    def __init__(
        self,
        builder: WorkflowBuilder,
        persistence: PersistenceProvider | None = None,
        *,
        batch_size: int = 100,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
        self.builder = builder
        self._persistence = persistence
        self.batch_size = batch_size
        self._stopping = asyncio.Event()

    async def _store(self) -> PersistenceProvider:
        # The builder resolves (and initializes once) its default provider or the given one.
        return await self.builder._persistence(self._persistence)

    async def run_once(self, now: datetime | None = None) -> list[ScheduledRun]:
        """Start a workflow for every enabled schedule due at ``now`` (default: the current
        time; timezone-aware) and advance the schedules; return the workflows this call
        started (another runner may have started some of the due ones)."""
        moment = datetime.now(timezone.utc) if now is None else check_aware("now", now)
        assert moment is not None
        moment = moment.astimezone(timezone.utc)
        store = await self._store()
        started: list[ScheduledRun] = []
        seen: set[tuple[str, datetime]] = set()
        while True:
            due = await store.get_due_schedules(moment, limit=self.batch_size)
            fresh = [
                schedule
                for schedule in due
                if (schedule.schedule_name, schedule.next_run_at) not in seen
            ]
            for schedule in fresh:
                assert schedule.next_run_at is not None  # due schedules have one
                seen.add((schedule.schedule_name, schedule.next_run_at))
                try:
                    run = await self._fire(store, schedule, moment)
                except Exception:
                    logger.exception("Schedule %r: unexpected error", schedule.schedule_name)
                    continue
                if run is not None:
                    started.append(run)
            # A full batch may hide more due schedules; one that could not be advanced (a
            # store error) comes back unchanged and is not tried twice in one call.
            if len(due) < self.batch_size or not fresh:
                return started

    async def run_forever(
        self,
        interval_seconds: float = 60.0,
        *,
        on_round: Callable[[list[ScheduledRun]], object] | None = None,
    ) -> None:
        """Call :meth:`run_once` every ``interval_seconds`` until :meth:`stop`. An error of one
        round (e.g. the database is unreachable) is logged and the next round goes on.
        ``on_round`` is called with the workflows each round started."""
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, not {interval_seconds}.")
        while not self._stopping.is_set():
            try:
                started = await self.run_once()
                if on_round is not None:
                    on_round(started)
            except Exception:
                logger.exception("Schedule runner: a round failed; trying again")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval_seconds)
        self._stopping.clear()  # the runner may run again

    def stop(self) -> None:
        """Make :meth:`run_forever` return after its current round (at once if it is waiting
        for the next one)."""
        self._stopping.set()

    # -- one schedule ----------------------------------------------------------------------

    async def _fire(
        self, store: PersistenceProvider, schedule: ScheduleRecord, now: datetime
    ) -> ScheduledRun | None:
        """Start the workflow of one due schedule (if nobody did) and advance the schedule."""
        name = schedule.schedule_name
        fire_time = schedule.next_run_at
        assert fire_time is not None
        try:
            following: datetime | None = next_fire_time(schedule.cron_expression, now)
        except ValueError as exc:
            logger.error("Schedule %r is disabled until registered again: %s", name, exc)
            await self._advance(store, schedule, None, now, started=False)
            return None
        workflow_id = str(uuid.uuid4())
        try:
            workflow = await self.builder.create_workflow(
                schedule.workflow_type,
                schedule.initial_data,
                persistence_provider=store,
                idempotency_key=schedule_idempotency_key(name, fire_time),
                metadata={"schedule_name": name, "scheduled_for": fire_time.isoformat()},
                workflow_id=workflow_id,
            )
        except PersistenceError as exc:
            logger.error("Schedule %r: cannot start its workflow now (%s); will retry", name, exc)
            return None
        except IdempotencyConflictError:
            # The fire time's workflow exists, started with other data (the schedule changed).
            await self._advance(store, schedule, following, now, started=True)
            return None
        except Exception as exc:
            failed_id = getattr(exc, "workflow_id", None)
            if failed_id == workflow_id:
                # automate_start ran the first step, which failed: the workflow exists, FAILED.
                logger.error(
                    "Schedule %r: the first step of workflow %s failed: %s", name, failed_id, exc
                )
                await self._advance(store, schedule, following, now, started=True)
                return ScheduledRun(
                    name, fire_time, workflow_id, WorkflowStatus.FAILED.value, str(exc)
                )
            logger.error(
                "Schedule %r: cannot start a %r workflow (%s: %s); skipping this fire time",
                name,
                schedule.workflow_type,
                type(exc).__name__,
                exc,
            )
            await self._advance(store, schedule, following, now, started=False)
            return None
        run = None
        if workflow.id == workflow_id:
            run = await self._first_step(name, fire_time, workflow)
        await self._advance(store, schedule, following, now, started=True)
        return run

    async def _first_step(self, name: str, fire_time: datetime, workflow: Workflow) -> ScheduledRun:
        """Run the first step of a workflow this runner created (unless automate_start did)."""
        error = None
        ran = bool(workflow.definition_snapshot.get("automate_start"))
        if not ran and workflow.status is WorkflowStatus.ACTIVE:
            try:
                await workflow.next_step()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.error(
                    "Schedule %r: the first step of workflow %s failed: %s",
                    name,
                    workflow.id,
                    error,
                )
        return ScheduledRun(name, fire_time, workflow.id, workflow.status.value, error)

    async def _advance(
        self,
        store: PersistenceProvider,
        schedule: ScheduleRecord,
        following: datetime | None,
        now: datetime,
        *,
        started: bool,
    ) -> None:
        assert schedule.next_run_at is not None
        try:
            await store.mark_schedule_run(
                schedule.schedule_name,
                due_at=schedule.next_run_at,
                next_run_at=following,
                run_at=now,
                started=started,
            )
        except PersistenceError as exc:
            logger.error(
                "Schedule %r: cannot advance it (%s); will retry", schedule.schedule_name, exc
            )
