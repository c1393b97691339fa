"""``ZombieScanner``: finds workflows whose worker died in the middle of a step, and recovers them.

**Zombie.** A workflow is a zombie when its heartbeat row is older than the threshold
(``last_heartbeat < now - stale_threshold_seconds``, on the database's clock for PostgreSQL)
*and* its status is ACTIVE or PENDING_ASYNC: a step (or a dispatched task) was in progress and
nobody has vouched for it since. A stale heartbeat of a run in any other status is not a zombie
(the process died after the run's last commit, before deleting its heartbeat) and is left alone.

**Policies.**

- ``fail`` (default): the run ends FAILED_WORKER_CRASH (retryable with ``Workflow.retry()``),
  with the audit entry ZOMBIE_DETECTED, the ERROR execution log line ``Workflow marked as
  FAILED_WORKER_CRASH: <reason>`` and its heartbeat deleted. Nothing else runs: no
  compensation, no retry.
- ``resume``: the run stays (or becomes again) ACTIVE at its last committed position; the step
  that was in progress runs again (at least once) when a :class:`ruvon.worker.Worker` drives it.
  A PENDING_ASYNC run is ACTIVE again at the dispatched step, its dispatch tokens voided, so the
  step is dispatched anew (a late report of the lost task is ignored). The recovery is counted in
  ``metadata["recoveries"]`` and marked for the workers in ``metadata["recovered"]``; audit
  ZOMBIE_DETECTED and WORKFLOW_RECOVERED. A run recovered ``max_recoveries`` times already ends
  FAILED_WORKER_CRASH instead.

**Exactly one recoverer.** A recovery is one conditional write
(``PersistenceProvider.recover_stale_workflow``): the heartbeat must still be the stale one the
scan read and the row must still be at the version read, or nothing is written. So scanners may
run in many processes at once: each zombie is recovered by one of them, a worker that beats
again in the meantime keeps its run, and the version bump makes any late commit of the presumed
dead worker fail with ``ConcurrencyConflictError`` instead of overwriting the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.models import WorkflowStatus
from ruvon.progress import Progress
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
)

__all__ = ["RECOVERED_KEY", "RECOVERIES_KEY", "ZombieScanner"]

logger = logging.getLogger("ruvon.zombie_scanner")

RECOVERIES_KEY = "recoveries"
"""Workflow metadata: how many times the scanner resumed the run."""
RECOVERED_KEY = "recovered"
"""Workflow metadata: set by a ``resume`` recovery (what was recovered, when); a worker that
claims the run removes it."""

_RUNNING = frozenset({WorkflowStatus.ACTIVE.value, WorkflowStatus.PENDING_ASYNC.value})
_CRASH = WorkflowStatus.FAILED_WORKER_CRASH.value

Policy = Literal["fail", "resume"]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one recovery writes."""

    commit: WorkflowCommit
    outcome: str
    """``failed`` or ``resumed``."""


class ZombieScanner:
    """Finds and recovers zombie workflows; see the module's documentation.

    Args:
        persistence: The store shared with the workers.
        stale_threshold_seconds: A heartbeat older than this is stale. Default 120; keep it
            above twice the heartbeat interval (30 s by default).
        policy: ``"fail"`` (default) or ``"resume"``.
        max_recoveries: With ``resume``, how many times one run may be resumed; the next
            zombie of the run fails it. Default 3.
    """

    def __init__(
        self,
        persistence: PersistenceProvider,
        stale_threshold_seconds: float = 120.0,
        *,
        policy: Policy = "fail",
        max_recoveries: int = 3,
    ) -> None:
        if stale_threshold_seconds < 0:
            raise ValueError(
                f"stale_threshold_seconds must be >= 0, got {stale_threshold_seconds!r}"
            )
        if policy not in ("fail", "resume"):
            raise ValueError(f"policy must be 'fail' or 'resume', got {policy!r}")
        if max_recoveries < 0:
            raise ValueError(f"max_recoveries must be >= 0, got {max_recoveries!r}")
        self.persistence = persistence
        self.stale_threshold_seconds = float(stale_threshold_seconds)
        self.policy: Policy = policy
        self.max_recoveries = max_recoveries
        self._stopping = asyncio.Event()

    # -- scanning --------------------------------------------------------------------------

    async def scan(self, threshold: float | None = None) -> list[dict[str, Any]]:
        """The zombies now (JSON-ready dicts): first those found by a stale heartbeat (oldest
        first), then the runs whose driver stopped before its first heartbeat (an expired
        lease, unchanged for the threshold). Each has ``workflow_id``, ``workflow_type``,
        ``status``, ``worker_id`` (the heartbeat's worker, or the lease's owner),
        ``current_step``, ``last_heartbeat`` (ISO: the heartbeat, or the run's last commit),
        ``stale_seconds``, ``metadata`` (the heartbeat's) and ``source`` (``heartbeat`` or
        ``lease``)."""
        limit = self.stale_threshold_seconds if threshold is None else threshold
        now = datetime.now(timezone.utc)
        zombies: list[dict[str, Any]] = []
        for beat in await self.persistence.get_stale_heartbeats(limit):
            record = await self.persistence.load_workflow(beat.workflow_id)
            if record is None or record.status not in _RUNNING:
                continue
            zombies.append(
                {
                    "workflow_id": beat.workflow_id,
                    "workflow_type": record.workflow_type,
                    "status": record.status,
                    "worker_id": beat.worker_id,
                    "current_step": beat.current_step,
                    "last_heartbeat": beat.last_heartbeat.isoformat(),
                    "stale_seconds": round((now - beat.last_heartbeat).total_seconds(), 3),
                    "metadata": beat.metadata,
                    "source": "heartbeat",
                }
            )
        for record in await self.persistence.get_expired_leases(limit):
            changed = record.updated_at or now
            zombies.append(
                {
                    "workflow_id": record.id,
                    "workflow_type": record.workflow_type,
                    "status": record.status,
                    "worker_id": record.lease_owner,
                    "current_step": record.current_step,
                    "last_heartbeat": changed.isoformat(),
                    "stale_seconds": round((now - changed).total_seconds(), 3),
                    "metadata": None,
                    "source": "lease",
                    "lease_expires_at": _iso(record.lease_expires_at),
                }
            )
        return zombies

    # -- recovering ------------------------------------------------------------------------

    async def recover(self, zombies: list[dict[str, Any]], dry_run: bool = False) -> int:
        """Apply the policy to each zombie found by :meth:`scan`; return how many this scanner
        recovered (0 with ``dry_run``, which writes nothing). A zombie that came back to life,
        moved on or was recovered by another scanner meanwhile is skipped; a store error for
        one zombie is logged and the others go on."""
        if dry_run:
            return 0
        recovered = 0
        for zombie in zombies:
            try:
                if await self._recover_one(zombie):
                    recovered += 1
            except PersistenceError as exc:
                logger.error("Cannot recover workflow %s now: %s", zombie["workflow_id"], exc)
        return recovered

    async def _recover_one(self, zombie: dict[str, Any]) -> bool:
        workflow_id = zombie["workflow_id"]
        record = await self.persistence.load_workflow(workflow_id)
        if record is None or record.status not in _RUNNING:
            return False
        plan = self._plan(record, zombie)
        if not await self._write(plan.commit, zombie, record):
            logger.info("Workflow %s: not recovered (alive again, or recovered)", workflow_id)
            return False
        log = logger.error if plan.outcome == "failed" else logger.warning
        log("Zombie workflow %s %s: %s", workflow_id, plan.outcome, plan.commit.logs[0].message)
        return True

    async def _write(
        self, commit: WorkflowCommit, zombie: dict[str, Any], record: WorkflowRecord
    ) -> bool:
        """Write a recovery if the zombie is still as found: its heartbeat unchanged, or (a
        zombie by its lease) the row not moved on, still leased to the same owner and that
        lease still expired (on the store's clock: see the commit's ``lease_holder``)."""
        if zombie.get("source") != "lease":
            heartbeat_at = datetime.fromisoformat(zombie["last_heartbeat"])
            return await self.persistence.recover_stale_workflow(commit, heartbeat_at)
        if record.lease_owner != zombie["worker_id"]:
            return False
        try:
            await self.persistence.commit_workflow(commit)
        except (ConcurrencyConflictError, WorkflowNotFoundError):
            return False
        return True

    def _plan(self, record: WorkflowRecord, zombie: dict[str, Any]) -> _Plan:
        step = record.current_step
        recoveries = int(record.metadata.get(RECOVERIES_KEY) or 0)
        detected = AuditEvent(
            "ZOMBIE_DETECTED",
            step_name=step,
            old_status=record.status,
            data={
                "worker_id": zombie["worker_id"],
                "current_step": zombie.get("current_step"),
                "last_heartbeat": zombie["last_heartbeat"],
                "stale_threshold_seconds": self.stale_threshold_seconds,
                "policy": self.policy,
            },
            worker_id=zombie["worker_id"],
        )
        if zombie.get("source") == "lease":
            reason = (
                f"driver {zombie['worker_id']} stopped during step {step} before its first "
                f"heartbeat (lease expired at {zombie.get('lease_expires_at')}, last commit "
                f"{zombie['last_heartbeat']})"
            )
        else:
            reason = (
                f"worker {zombie['worker_id']} stopped sending heartbeats during step {step} "
                f"(last heartbeat {zombie['last_heartbeat']})"
            )
        progress = Progress.from_json(record.progress, cursor=step)
        metadata = {k: v for k, v in record.metadata.items() if k != "waiting_for"}
        if self.policy == "resume" and recoveries < self.max_recoveries:
            metadata[RECOVERIES_KEY] = recoveries + 1
            metadata[RECOVERED_KEY] = {
                "step": step,
                "from_status": record.status,
                "worker_id": zombie["worker_id"],
                "at": datetime.now(timezone.utc).isoformat(),
            }
            if progress.dispatch:
                # Void every outstanding dispatch: the dispatched steps are PENDING again (so
                # they are dispatched anew) and a late report of a lost task is ignored.
                pending = {k: v for k, v in progress.steps.items() if k not in progress.dispatch}
                progress = dataclasses.replace(progress, steps=pending, dispatch={})
            status = WorkflowStatus.ACTIVE.value
            entries = [
                dataclasses.replace(detected, new_status=status),
                AuditEvent(
                    "WORKFLOW_RECOVERED",
                    step_name=step,
                    old_status=record.status,
                    new_status=status,
                    data={"recoveries": recoveries + 1, "max_recoveries": self.max_recoveries},
                ),
            ]
            message = f"Workflow resumed after a worker crash ({recoveries + 1}): {reason}"
            level, outcome, error = "WARNING", "resumed", record.error_message
        else:
            if self.policy == "resume":
                reason = f"{reason}; recovered {recoveries} time(s) already"
            if step is not None:
                progress = progress.step_failed(step)
            status = _CRASH
            entries = [dataclasses.replace(detected, new_status=status)]
            message = f"Workflow marked as FAILED_WORKER_CRASH: {reason}"
            level, outcome, error = "ERROR", "failed", f"Worker crash: {reason}"
        update = record.as_update(
            status=status,
            metadata=metadata,
            progress=progress.to_json(),
            error_message=error,
            lease_owner=None,
            lease_expires_at=None,
        )
        log = LogEntry(level, message, step_name=step, metadata={"worker_id": zombie["worker_id"]})
        commit = WorkflowCommit(
            update,
            record.version,
            audit=entries,
            logs=[log],
            # A zombie by its heartbeat: the dead driver's lease ends with the recovery. A zombie
            # by its lease: the commit holds no lease, so the store writes it only while that
            # lease is still expired (a driver that renewed it since keeps its run).
            lease_holder=None if zombie.get("source") == "lease" else record.lease_owner,
        )
        return _Plan(commit, outcome)

    # -- both, and the daemon --------------------------------------------------------------

    async def scan_and_recover(
        self, stale_threshold_seconds: float | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """One scan and its recoveries; the summary: ``scan_time`` (ISO), ``duration_seconds``,
        ``zombies_found``, ``zombies_recovered`` (0 with ``dry_run``), ``dry_run``,
        ``stale_threshold_seconds``, ``policy`` and the ``zombies`` found."""
        threshold = (
            self.stale_threshold_seconds
            if stale_threshold_seconds is None
            else float(stale_threshold_seconds)
        )
        started_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        zombies = await self.scan(threshold)
        recovered = await self.recover(zombies, dry_run=dry_run)
        return {
            "scan_time": started_at.isoformat(),
            "duration_seconds": round(time.perf_counter() - started, 6),
            "zombies_found": len(zombies),
            "zombies_recovered": recovered,
            "dry_run": dry_run,
            "stale_threshold_seconds": threshold,
            "policy": self.policy,
            "zombies": zombies,
        }

    async def run_daemon(
        self,
        scan_interval_seconds: float = 60.0,
        stale_threshold_seconds: float | None = None,
        *,
        on_scan: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        """Scan and recover every ``scan_interval_seconds`` until :meth:`stop_daemon`. A round
        that fails (e.g. the database is unreachable) is logged; the next one goes on.
        ``on_scan`` is called with each round's summary (that of :meth:`scan_and_recover`),
        e.g. to show the last scan."""
        if scan_interval_seconds <= 0:
            raise ValueError(f"scan_interval_seconds must be > 0, got {scan_interval_seconds!r}")
        while not self._stopping.is_set():
            try:
                summary = await self.scan_and_recover(stale_threshold_seconds)
                if summary["zombies_found"]:
                    logger.warning(
                        "Zombie scan: %d found, %d recovered",
                        summary["zombies_found"],
                        summary["zombies_recovered"],
                    )
                if on_scan is not None:
                    on_scan(summary)
            except Exception:
                logger.exception("Zombie scan failed; trying again in %ss", scan_interval_seconds)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=scan_interval_seconds)
        self._stopping.clear()  # the daemon may run again

    def stop_daemon(self) -> None:
        """Make :meth:`run_daemon` return after its current round (at once if it waits)."""
        self._stopping.set()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
