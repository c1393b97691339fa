"""``Worker``: drives the runs that have automatic work pending and nobody to do it, so that a
recovered run finishes without anybody calling ``next_step``.

Each round (:meth:`Worker.run_once`) looks at the ACTIVE runs and at the parents blocked on a
child, and takes on:

- runs the zombie scanner resumed (``metadata["recovered"]``, see :mod:`ruvon.zombie_scanner`);
- idle ACTIVE runs the engine would have gone on with by itself, had the process driving them
  not stopped: the last thing committed is a step with ``automate_next`` (also a completed
  ASYNC result or child outcome applied with it), a part of a step that works in parts, the
  start of a saga's rollback, a parked retry whose time has come, a run created with
  ``automate_start`` or by a schedule whose first step never ran, or a child (or spawned run)
  that has not waited for anyone yet;
- parents blocked on a child that has settled meanwhile (``WorkflowBuilder.settle_child``).

A run is *idle* when its row has not changed for ``idle_seconds`` (default 120, on this
process's clock) — longer than a live driver goes without a commit or a heartbeat (the engine
beats for every step that outlives its heartbeat interval, 30 s by default). A run whose last
commit was a caller's own move (a retry, a jump, a save) or left it at a step without
``automate_next`` waits for its caller, and is never touched.

**One driver per run.** A run is *claimed* before anything of it runs: one conditional write
(``PersistenceProvider.claim_workflow``) that bumps the row version (audit WORKFLOW_CLAIMED) and
creates the run's heartbeat row, only if the row is still at the version read and has no
heartbeat. Of two workers, only one wins; the other skips the run. The winner keeps the
heartbeat fresh while it drives (:class:`~ruvon.heartbeat.HeartbeatManager`) and deletes it
when done; if the worker dies, its heartbeat goes stale and the zombie scanner takes over.

**How far.** A run is driven as its interrupted driver would have: ``next_step()`` (the step
and the ``automate_next`` chain after it), or ``run()`` (to its first wait) for a child or
spawned run that goes on by itself. ``run_to_end=True`` uses ``run()`` for every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ruvon.errors import ConcurrencyConflictError
from ruvon.heartbeat import HeartbeatManager, default_worker_id
from ruvon.models import TERMINAL_STATUSES, WorkflowStatus
from ruvon.providers.persistence import (
    AuditEvent,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
)
from ruvon.saga import ROLLBACK_KEY
from ruvon.zombie_scanner import RECOVERED_KEY

if TYPE_CHECKING:
    from ruvon.builder import WorkflowBuilder

__all__ = ["DrivenRun", "Worker", "WorkerRound"]

logger = logging.getLogger("ruvon.worker")

_S = WorkflowStatus
_MANUAL = frozenset({"WORKFLOW_RETRIED", "WORKFLOW_JUMPED", "WORKFLOW_SAVED", "WORKFLOW_CLAIMED"})
"""Last audit entries that leave an ACTIVE run to its caller (a claim: to its claimer)."""
_BLOCKED = (_S.PENDING_SUB_WORKFLOW.value, _S.WAITING_CHILD_HUMAN_INPUT.value)
_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)
_WAITING = frozenset(
    {_S.PAUSED.value, _S.WAITING_HUMAN.value, _S.WAITING_HUMAN_INPUT.value}
    | {_S.WAITING_CHILD_HUMAN_INPUT.value}
)


@dataclass(frozen=True, slots=True)
class DrivenRun:
    """A run a worker claimed and drove (or, for a parent, told about its child)."""

    workflow_id: str
    reason: str
    """Why it was pending: ``recovered``, ``automate_next``, ``step in parts``, ``rollback``,
    ``retry due``, ``first step``, ``runs on its own`` or ``child settled``."""
    status: str
    """Its status afterwards."""
    error: str | None = None
    """What went wrong while driving it (a failed step leaves the run FAILED)."""


@dataclass(slots=True)
class WorkerRound:
    """What one :meth:`Worker.run_once` did."""

    driven: list[DrivenRun] = field(default_factory=list)
    lost: int = 0
    """Runs another worker or driver took first (their claim, or a commit, won)."""

    def to_dict(self) -> dict[str, Any]:
        """The round as JSON-ready data."""
        return {"driven": [asdict(run) for run in self.driven], "lost": self.lost}


class Worker:
    """Finds runs with pending automatic work, claims and drives them; see the module.

    Args:
        builder: Loads and drives the runs (it knows their step functions), on its
            persistence provider.
        worker_id: Who claims (stored in heartbeats and audit entries). Default
            ``<hostname>-<pid>-<8 hex>``.
        idle_seconds: How long a run's row must be unchanged before the worker takes it on
            (runs the scanner resumed are taken at once). Default 120.
        heartbeat_interval_seconds: The interval of the heartbeat kept while driving a run;
            keep it well under the scanner's threshold. Default 30.
        batch_size: Rows read per query. Default 100.
        run_to_end: Drive every run with ``run()`` instead of finishing the interrupted call.
    """

    def __init__(
        self,
        builder: WorkflowBuilder,
        *,
        worker_id: str | None = None,
        idle_seconds: float = 120.0,
        heartbeat_interval_seconds: float = 30.0,
        batch_size: int = 100,
        run_to_end: bool = False,
    ) -> None:
        if idle_seconds < 0:
            raise ValueError(f"idle_seconds must be >= 0, got {idle_seconds!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self.builder = builder
        self.worker_id = worker_id or default_worker_id()
        self.idle_seconds = float(idle_seconds)
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.batch_size = batch_size
        self.run_to_end = run_to_end
        self._passed: dict[str, int] = {}
        """Run id -> the version found to have no automatic work (not examined again)."""
        self._stopping = asyncio.Event()

    # -- rounds ----------------------------------------------------------------------------

    async def run_once(self) -> WorkerRound:
        """One round: drive every run with pending automatic work, settle every parent whose
        child settled; return what was done."""
        store = await self.builder._persistence(None)
        done = WorkerRound()
        now = datetime.now(timezone.utc)
        passed, self._passed = self._passed, {}
        for record in await self._records(store, _S.ACTIVE.value):
            try:
                pending = await self._pending(store, record, now, passed)
                if pending is not None:
                    await self._drive(store, record, *pending, done)
            except Exception:
                logger.exception("Worker %s: workflow %s failed", self.worker_id, record.id)
        for parent in await self._records(store, _BLOCKED):
            try:
                await self._settle(store, parent, now, done)
            except Exception:
                logger.exception("Worker %s: parent %s failed", self.worker_id, parent.id)
        return done

    async def run_forever(
        self,
        poll_interval_seconds: float = 10.0,
        *,
        on_round: Callable[[WorkerRound], object] | None = None,
    ) -> None:
        """Call :meth:`run_once` every ``poll_interval_seconds`` until :meth:`stop`. A round
        that fails (e.g. the database is unreachable) is logged; the next one goes on.
        ``on_round`` is called with what each round did."""
        if poll_interval_seconds <= 0:
            raise ValueError(f"poll_interval_seconds must be > 0, got {poll_interval_seconds!r}")
        while not self._stopping.is_set():
            try:
                done = await self.run_once()
                if done.driven:
                    logger.info("Worker %s drove %d run(s)", self.worker_id, len(done.driven))
                if on_round is not None:
                    on_round(done)
            except Exception:
                logger.exception("Worker %s: a round failed; trying again", self.worker_id)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=poll_interval_seconds)
        self._stopping.clear()  # the worker may run again

    def stop(self) -> None:
        """Make :meth:`run_forever` return after its current round (at once if it waits)."""
        self._stopping.set()

    async def _records(
        self, store: PersistenceProvider, status: str | Sequence[str]
    ) -> list[WorkflowRecord]:
        """Every run in ``status``, read in pages (each once, though rows move meanwhile)."""
        found: dict[str, WorkflowRecord] = {}
        offset = 0
        while True:
            page = await store.list_workflows(status=status, limit=self.batch_size, offset=offset)
            for record in page:
                found.setdefault(record.id, record)
            if len(page) < self.batch_size:
                return list(found.values())
            offset += self.batch_size

    def _idle(self, record: WorkflowRecord, now: datetime) -> bool:
        changed = record.updated_at
        return changed is not None and (now - changed).total_seconds() >= self.idle_seconds

    # -- what is pending -------------------------------------------------------------------

    async def _pending(
        self,
        store: PersistenceProvider,
        record: WorkflowRecord,
        now: datetime,
        passed: dict[str, int],
    ) -> tuple[str, bool] | None:
        """Why ``record`` has automatic work, and whether to drive it to its first wait;
        ``None``: it has none (or is not idle yet)."""
        if RECOVERED_KEY in record.metadata:
            return "recovered", await self._goes_on_alone(store, record)
        if not self._idle(record, now):
            return None
        if passed.get(record.id) == record.version:
            self._passed[record.id] = record.version
            return None
        if ROLLBACK_KEY in record.metadata:
            return "rollback", False
        event = await store.latest_audit_event(record.id)
        if event is not None and event.event_type == "STEP_RETRY_SCHEDULED":
            due = (event.data or {}).get("next_attempt_at")
            if due is None or datetime.fromisoformat(due) > now:
                return None  # not yet: asked again next round
            return "retry due", False
        found = await self._automatic(store, record, event)
        if found is None:  # settled for this version: not examined again
            self._passed[record.id] = record.version
        return found

    async def _automatic(
        self, store: PersistenceProvider, record: WorkflowRecord, event: AuditEvent | None
    ) -> tuple[str, bool] | None:
        if event is None or event.event_type in _MANUAL:
            return None
        if await self._goes_on_alone(store, record):
            return "runs on its own", True
        kind = event.event_type
        if kind == "STEP_PROGRESSED":
            return "step in parts", False
        if kind == "STEP_EXECUTED" and await self._chains(record, event.step_name):
            return "automate_next", False
        if kind == "WORKFLOW_STARTED" and (
            record.definition_snapshot.get("automate_start") or "schedule_name" in record.metadata
        ):
            return "first step", False
        return None

    async def _chains(self, record: WorkflowRecord, step_name: str | None) -> bool:
        """Whether ``step_name`` of the run has ``automate_next`` (in its own definition:
        snapshot and injected steps)."""
        try:
            workflow = await self.builder.load_workflow(record.id)
        except Exception as exc:  # a definition or state that no longer loads: not ours
            logger.warning("Worker %s: cannot load %s: %s", self.worker_id, record.id, exc)
            return False
        return any(step.name == step_name and step.automate_next for step in workflow.steps)

    async def _goes_on_alone(self, store: PersistenceProvider, record: WorkflowRecord) -> bool:
        """A child its parent waits for, or a spawned run, runs to its first wait by itself
        (in its starter's call); once it has waited, whoever ends a wait drives it."""
        if record.parent_execution_id is not None:
            parent = await store.load_workflow(record.parent_execution_id)
            alone = (
                parent is not None
                and parent.blocked_on_child_id == record.id
                and parent.status in _BLOCKED
            )
        else:
            alone = "spawned_by" in record.metadata
        if not alone:
            return False
        return not await store.get_audit_log(record.id, event_type="WORKFLOW_PAUSED", limit=1)

    # -- driving ---------------------------------------------------------------------------

    async def _claim(self, store: PersistenceProvider, record: WorkflowRecord, reason: str) -> bool:
        """Take the run: bump its version and create its heartbeat, if nobody moved it."""
        metadata = {k: v for k, v in record.metadata.items() if k != RECOVERED_KEY}
        claimed = AuditEvent(
            "WORKFLOW_CLAIMED",
            step_name=record.current_step,
            data={"reason": reason},
            worker_id=self.worker_id,
        )
        # An expired lease of a driver that stopped is cleared; a live one refuses the claim.
        update = record.as_update(metadata=metadata, lease_owner=None, lease_expires_at=None)
        commit = WorkflowCommit(update, record.version, [claimed])
        return await store.claim_workflow(commit, self.worker_id, metadata={"reason": reason})

    def _heartbeat(self, store: PersistenceProvider, record: WorkflowRecord) -> HeartbeatManager:
        return HeartbeatManager(
            store,
            record.id,
            self.worker_id,
            heartbeat_interval_seconds=self.heartbeat_interval_seconds,
        )

    async def _drive(
        self,
        store: PersistenceProvider,
        record: WorkflowRecord,
        reason: str,
        whole_run: bool,
        done: WorkerRound,
    ) -> None:
        if not await self._claim(store, record, reason):
            done.lost += 1
            return
        error = None
        async with self._heartbeat(store, record):
            workflow = await self.builder.load_workflow(record.id)
            try:
                if whole_run or self.run_to_end:
                    await workflow.run()
                else:
                    await workflow.next_step()
            except ConcurrencyConflictError:
                done.lost += 1  # another driver moved it meanwhile: it is theirs
                return
            except Exception as exc:  # the step failed: recorded on the run (FAILED)
                error = f"{type(exc).__name__}: {exc}"
        logger.info("Worker %s drove %s (%s): %s", self.worker_id, record.id, reason, error or "")
        done.driven.append(DrivenRun(record.id, reason, workflow.status.value, error))

    async def _settle(
        self,
        store: PersistenceProvider,
        parent: WorkflowRecord,
        now: datetime,
        done: WorkerRound,
    ) -> None:
        """Tell an idle parent about its idle child, when the child settled in a way the
        parent has not applied (it ended, or it waits while the parent still runs it)."""
        child_id = parent.blocked_on_child_id
        if child_id is None or not self._idle(parent, now):
            return
        child = await store.load_workflow(child_id)
        if child is None or not self._idle(child, now):
            return
        ended = child.status in _TERMINAL
        waits = child.status in _WAITING and parent.status == _S.PENDING_SUB_WORKFLOW.value
        if not (ended or waits):
            return
        reason = "child settled"
        if not await self._claim(store, parent, reason):
            done.lost += 1
            return
        async with self._heartbeat(store, parent):
            await self.builder.settle_child(child_id)
        reread = await store.load_workflow(parent.id)
        status = reread.status if reread is not None else parent.status
        done.driven.append(DrivenRun(parent.id, reason, status))
