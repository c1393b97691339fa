"""One measurement: start the doomed process and, next to it in this process, the recovery that
runs all the time in production: a ``ZombieScanner`` (``resume``) loop and ``Worker`` loops.
Wait until every workflow is blocked in Charge with a heartbeat row, then SIGKILL the doomed
process at a random point of the scanner's cycle, and measure until every workflow is COMPLETED;
then check every workflow's effects and audit trail.

Times are ``time.perf_counter()`` seconds after the kill:

- **detected (first / all)**: the scanner's recovery of the first / the last workflow landed;
- **finish**: from the last detection to the last workflow COMPLETED (as the worker reports it);
- **total**: from the kill to the last COMPLETED.

Checks, from the effects file (one line per outside effect, with the pid of the process that
caused it: the doomed process's lines are the effects before the kill) and each workflow's audit
trail (the ``STEP_EXECUTED`` entries before its ``ZOMBIE_DETECTED`` are the steps whose commit
landed before the kill):

- **duplicated committed steps**: a step committed before the kill whose effect happened more
  than once (must be 0: a committed step never runs again);
- **in-flight re-runs**: the step in progress at the kill (its effect written, no commit) that
  ran again after the recovery; expected for every workflow (steps run at least once);
- **duplicated after recovery**: a step that ran more than once after the recovery (must be 0:
  one driver per run);
- **lost**: workflows not COMPLETED at the end (must be 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from recovery import steps
from recovery.doomed import CONFIG_DIR, WORKFLOW_TYPE
from recovery.store import fresh_database, provider_for
from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from ruvon.worker import Worker
from ruvon.zombie_scanner import ZombieScanner

COMPLETED = WorkflowStatus.COMPLETED.value
READY_TIMEOUT_S = 120.0
"""Longest wait for the doomed process to have every workflow blocked in Charge."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What one measurement runs with."""

    workflows: int
    threshold_s: float
    """The scanner's ``stale_threshold_seconds``."""
    interval_s: float
    """The scanner's wait between scans (``run_daemon``'s ``scan_interval_seconds``)."""
    heartbeat_s: float
    """The heartbeat interval of both processes' builders and of the workers."""
    poll_s: float
    """A worker's wait after a round that drove nothing."""
    workers: int
    """``Worker`` instances polling concurrently in the recovering process."""
    timeout_s: float
    """Longest recovery after the kill; what is not COMPLETED by then is lost."""
    postgres_url: str
    child_pool_size: int = 20


class ChildFailed(RuntimeError):
    """The doomed process ended, or never got every workflow into Charge."""


@dataclass
class Recovery:
    """What the scanner and the workers did (times in seconds after the kill)."""

    killed_at: float | None = None
    killed_wall: datetime | None = None
    detected: dict[str, float] = field(default_factory=dict)
    """Workflow id -> when the scanner's recovery of it landed (the first, if several)."""
    beat_age: dict[str, float] = field(default_factory=dict)
    """Workflow id -> how old its last heartbeat was at the kill."""
    recoveries: int = 0
    """Recoveries written (a workflow recovered twice counts twice)."""
    scans: int = 0
    scans_with_zombies: list[dict[str, float]] = field(default_factory=list)
    """The scans that found zombies: when, how long, how many found and recovered."""
    completed: dict[str, float] = field(default_factory=dict)
    """Workflow id -> end of the worker round that drove it to COMPLETED."""
    anomalies: list[str] = field(default_factory=list)
    """Recoveries or drives before the kill, runs driven to another status."""
    lost_claims: int = 0
    """Runs a worker found taken by another (claims lost)."""

    def kill_now(self) -> None:
        self.killed_at = time.perf_counter()
        self.killed_wall = datetime.now(timezone.utc)

    def since_kill(self) -> float | None:
        """Seconds since the kill; ``None`` before it."""
        return None if self.killed_at is None else time.perf_counter() - self.killed_at


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


async def _wait_or(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` unless ``event`` is set first."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)


async def _scan_loop(
    scanner: ZombieScanner, rec: Recovery, interval: float, stop: asyncio.Event
) -> None:
    """``ZombieScanner.run_daemon``'s loop (scan, recover each zombie, wait ``interval``),
    recording which workflow each recovery was for and when it landed."""
    while not stop.is_set():
        started = time.perf_counter()
        zombies = await scanner.scan()
        rec.scans += 1
        recovered = 0
        for zombie in zombies:
            if not await scanner.recover([zombie]):
                continue
            workflow_id, landed = zombie["workflow_id"], rec.since_kill()
            recovered += 1
            rec.recoveries += 1
            if landed is None or rec.killed_wall is None:
                rec.anomalies.append(f"{workflow_id}: recovered before the kill")
            elif workflow_id not in rec.detected:
                rec.detected[workflow_id] = landed
                beat = datetime.fromisoformat(zombie["last_heartbeat"])
                rec.beat_age[workflow_id] = (rec.killed_wall - beat).total_seconds()
        if zombies and rec.killed_at is not None:
            rec.scans_with_zombies.append(
                {
                    "at_s": round(started - rec.killed_at, 4),
                    "duration_s": round(time.perf_counter() - started, 4),
                    "found": len(zombies),
                    "recovered": recovered,
                }
            )
        await _wait_or(stop, interval)


async def _work_loop(
    worker: Worker, rec: Recovery, expected: int, poll: float, stop: asyncio.Event
) -> None:
    """``Worker.run_once`` in a loop (``run_forever`` with a short poll), until every workflow
    is COMPLETED."""
    while not stop.is_set():
        done = await worker.run_once()
        ended = rec.since_kill()
        rec.lost_claims += done.lost
        for run in done.driven:
            if ended is None:
                rec.anomalies.append(f"{run.workflow_id}: driven before the kill")
            elif run.status == COMPLETED:
                rec.completed.setdefault(run.workflow_id, ended)
            else:
                rec.anomalies.append(f"{run.workflow_id}: driven to {run.status} ({run.error})")
        if len(rec.completed) >= expected:
            stop.set()
        elif not done.driven:
            await _wait_or(stop, poll)


async def _until_in_flight(
    child: asyncio.subprocess.Process,
    provider: PersistenceProvider,
    work: Path,
    workflows: int,
    log: Path,
) -> list[str]:
    """Wait until every workflow is blocked in Charge (its marker) *and* has a heartbeat row
    (the scanner cannot find a run before its first heartbeat); the workflow ids."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if child.returncode is not None:
            raise ChildFailed(f"the doomed process exited ({child.returncode}): {_tail(log)}")
        ids = steps.ready_ids(work)
        if len(ids) >= workflows:
            beating = {beat.workflow_id for beat in await provider.get_stale_heartbeats(0)}
            if beating.issuperset(ids):
                return sorted(ids)
        if time.monotonic() > deadline:
            raise ChildFailed(
                f"after {READY_TIMEOUT_S:.0f} s, {len(ids)} of {workflows} workflows were in "
                f"Charge: {_tail(log)}"
            )
        await asyncio.sleep(0.02)


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").strip() if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


async def _verify(
    provider: PersistenceProvider,
    ids: list[str],
    effects: list[tuple[str, str, int]],
    doomed_pid: int,
) -> dict[str, Any]:
    """Compare every workflow's audit trail with its effects before and after the kill."""
    before_kill = Counter((wf, step) for wf, step, pid in effects if pid == doomed_pid)
    after_kill = Counter((wf, step) for wf, step, pid in effects if pid != doomed_pid)
    duplicated = in_flight_reruns = duplicated_after = lost = committed_before = 0
    errors: list[str] = []
    for workflow_id in ids:
        record = await provider.load_workflow(workflow_id)
        if record is None:
            lost += 1
            errors.append(f"{workflow_id}: not in the store")
            continue
        done = record.status == COMPLETED
        if not done:
            lost += 1
            errors.append(f"{workflow_id}: {record.status}")
        elif not all(record.state.get(key) for key in ("reserved", "charged", "shipped")):
            errors.append(f"{workflow_id}: state {record.state}")
        audit = await provider.get_audit_log(workflow_id, limit=1000)
        kinds = [event.event_type for event in audit]
        if "ZOMBIE_DETECTED" not in kinds:
            errors.append(f"{workflow_id}: never detected ({kinds})")
            continue
        cut = kinds.index("ZOMBIE_DETECTED")
        committed = {e.step_name for e in audit[:cut] if e.event_type == "STEP_EXECUTED"}
        in_flight = audit[cut].step_name
        committed_before += len(committed)
        commits = Counter(e.step_name for e in audit if e.event_type == "STEP_EXECUTED")
        if done and commits != Counter(steps.STEPS):
            errors.append(f"{workflow_id}: STEP_EXECUTED per step {dict(commits)}")
        if kinds.count("WORKFLOW_RECOVERED") != 1:
            errors.append(f"{workflow_id}: recovered {kinds.count('WORKFLOW_RECOVERED')} times")
        for step in steps.STEPS:
            key = (workflow_id, step)
            if step in committed:
                duplicated += before_kill[key] + after_kill[key] > 1
            elif step == in_flight:
                in_flight_reruns += before_kill[key] >= 1 and after_kill[key] >= 1
                duplicated_after += after_kill[key] > 1
            else:
                duplicated_after += after_kill[key] > 1
            if done and before_kill[key] + after_kill[key] == 0:
                errors.append(f"{workflow_id}: {step} committed without its effect")
    stored = await provider.count_workflows(workflow_type=WORKFLOW_TYPE)
    if stored != len(ids):
        errors.append(f"the store holds {stored} workflows, {len(ids)} were started")
    return {
        "ok": not (duplicated or duplicated_after or lost or errors),
        "committed_steps_before_kill": committed_before,
        "duplicated_committed_steps": duplicated,
        "in_flight_reruns": in_flight_reruns,
        "duplicated_after_recovery": duplicated_after,
        "lost": lost,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


async def measure(
    backend: str, settings: Settings, spawn: Callable[[dict[str, Any]], list[str]], log: IO[str]
) -> dict[str, Any]:
    """One complete measurement on ``backend``; its numbers. ``spawn(spec)`` is the command
    line of the doomed process; its stderr goes to ``log``."""
    with tempfile.TemporaryDirectory(prefix="ruvon-recovery-work-") as tmp:
        work = Path(tmp)
        steps.configure(work, hang=False)
        async with fresh_database(backend, settings.postgres_url) as database:
            provider = provider_for(database)
            await provider.initialize()  # the schema exists before the doomed process starts
            try:
                return await _measure(backend, settings, spawn, log, work, database, provider)
            finally:
                await provider.close()


async def _measure(
    backend: str,
    settings: Settings,
    spawn: Callable[[dict[str, Any]], list[str]],
    log: IO[str],
    work: Path,
    database: dict[str, Any],
    provider: PersistenceProvider,
) -> dict[str, Any]:
    spec = {
        "database": database,
        "work_dir": str(work),
        "workflows": settings.workflows,
        "heartbeat_seconds": settings.heartbeat_s,
        "pool_max_size": settings.child_pool_size,
    }
    builder = WorkflowBuilder(
        config_dir=CONFIG_DIR,
        persistence_provider=provider,
        heartbeat_interval_seconds=settings.heartbeat_s,
    )
    scanner = ZombieScanner(provider, stale_threshold_seconds=settings.threshold_s, policy="resume")
    rec = Recovery()
    stop = asyncio.Event()
    started = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *spawn(spec),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    # The recovery runs all along, as it does in production: it must leave the live worker's
    # runs alone, and the crash falls at a random point of the scanner's cycle.
    workers = [
        Worker(builder, heartbeat_interval_seconds=settings.heartbeat_s)
        for _ in range(settings.workers)
    ]
    tasks = [asyncio.ensure_future(_scan_loop(scanner, rec, settings.interval_s, stop))]
    tasks += [
        asyncio.ensure_future(_work_loop(w, rec, settings.workflows, settings.poll_s, stop))
        for w in workers
    ]
    try:
        ids = await _until_in_flight(child, provider, work, settings.workflows, Path(log.name))
        in_flight_after = time.perf_counter() - started
        await asyncio.sleep(random.uniform(0, settings.interval_s))
        rec.kill_now()
        child.send_signal(signal.SIGKILL)
        returncode = await child.wait()
        if returncode != -signal.SIGKILL:
            raise ChildFailed(f"the doomed process ended with {returncode}, not SIGKILL")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.timeout_s)
    finally:
        stop.set()
        if child.returncode is None:
            child.kill()
            await child.wait()
        await asyncio.gather(*tasks)
        if builder.step_monitor is not None:
            await builder.step_monitor.close()  # the provider is the caller's to close

    verification = await _verify(provider, ids, steps.read_effects(work), child.pid)
    detected = sorted(rec.detected.values())
    completed = sorted(rec.completed.values())
    all_detected = detected[-1] if len(detected) == len(ids) else None
    all_completed = completed[-1] if len(completed) == len(ids) else None
    ages = sorted(rec.beat_age.values())
    return {
        "backend": backend,
        "workflows": len(ids),
        "threshold_s": settings.threshold_s,
        "scan_interval_s": settings.interval_s,
        "heartbeat_s": settings.heartbeat_s,
        "workers": settings.workers,
        "poll_s": settings.poll_s,
        "store": {k: v for k, v in database.items() if k != "url"},
        "in_flight_after_s": round(in_flight_after, 3),
        "beat_age_at_kill_min_s": _rounded(ages[0] if ages else None),
        "beat_age_at_kill_max_s": _rounded(ages[-1] if ages else None),
        "detected_first_s": _rounded(detected[0] if detected else None),
        "detected_all_s": _rounded(all_detected),
        "detected": len(detected),
        "recoveries": rec.recoveries,
        "scans": rec.scans,
        "scans_with_zombies": rec.scans_with_zombies,
        "finish_s": _rounded(
            None if all_completed is None or all_detected is None else all_completed - all_detected
        ),
        "total_s": _rounded(all_completed),
        "completed": len(completed),
        "claims_lost": rec.lost_claims,
        "anomalies": rec.anomalies[:5],
        **{k: v for k, v in verification.items() if k != "ok"},
        "verification": {"ok": verification["ok"] and not rec.anomalies},
    }


def spawn_command(entry: Path) -> Callable[[dict[str, Any]], list[str]]:
    """The doomed process's command line: ``entry --child <spec as JSON>``."""

    def command(spec: dict[str, Any]) -> list[str]:
        return [sys.executable, str(entry), "--child", json.dumps(spec)]

    return command
