"""ZombieScanner (HB-03..05, C30): a zombie is a run ACTIVE or PENDING_ASYNC whose heartbeat is
older than the threshold; ``fail`` ends it FAILED_WORKER_CRASH, ``resume`` makes it ACTIVE again
at its last committed position (bounded by ``max_recoveries``); a dry run writes nothing; of
scanners racing for a zombie exactly one recovers it.

Heartbeats are made stale with a threshold of 0 (older than now), never by waiting."""

from __future__ import annotations

import asyncio

import pytest

from ruvon import ConcurrencyConflictError, WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from ruvon.zombie_scanner import RECOVERED_KEY, RECOVERIES_KEY, ZombieScanner
from tests.recovery import steps
from tests.recovery.conftest import LostTasks, dead_worker, died_in_charge, until
from tests.support.config import ConfigDir, audit_types


async def test_scan_finds_stale_active_and_pending_async_runs_only(
    config: ConfigDir, builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    active = await died_in_charge(builder)
    remote = await config.builder(store, execution_provider=LostTasks()).create_workflow(
        "Remote", {"order_id": "R-1"}
    )
    await remote.next_step()
    assert remote.status is WorkflowStatus.PENDING_ASYNC
    await dead_worker(store, remote, "Score")
    finished = await builder.create_workflow("Manual", {"order_id": "M-1"})
    await finished.run()
    await dead_worker(store, finished, "Second")  # died after its last commit: not a zombie
    waiting = await builder.create_workflow("Manual", {"order_id": "M-2"})
    await waiting.cancel()
    await dead_worker(store, waiting, "First")

    zombies = await ZombieScanner(store, stale_threshold_seconds=0).scan()

    assert sorted((z["workflow_id"], z["status"]) for z in zombies) == sorted(
        [(active.id, "ACTIVE"), (remote.id, "PENDING_ASYNC")]
    )
    first = next(z for z in zombies if z["workflow_id"] == active.id)
    assert first["worker_id"] == "dead-worker" and first["current_step"] == "Charge"
    assert first["workflow_type"] == "Order" and first["stale_seconds"] >= 0
    assert await ZombieScanner(store).scan(threshold=3600) == []  # fresh enough


async def test_fail_policy(builder: WorkflowBuilder, store: PersistenceProvider) -> None:
    run = await died_in_charge(builder)
    scanner = ZombieScanner(store, stale_threshold_seconds=0)

    summary = await scanner.scan_and_recover()

    assert summary["zombies_found"] == summary["zombies_recovered"] == 1
    assert summary["dry_run"] is False and summary["policy"] == "fail"
    assert summary["stale_threshold_seconds"] == 0
    assert [z["workflow_id"] for z in summary["zombies"]] == [run.id]
    assert {"scan_time", "duration_seconds"} <= summary.keys()
    crashed = await builder.load_workflow(run.id)
    assert crashed.status is WorkflowStatus.FAILED_WORKER_CRASH
    assert crashed.current_step_name == "Charge"
    assert crashed.error_message is not None and "dead-worker" in crashed.error_message
    assert (await audit_types(store, run.id))[-1] == "ZOMBIE_DETECTED"
    detected = (await store.get_audit_log(run.id, event_type="ZOMBIE_DETECTED"))[0]
    assert (detected.old_status, detected.new_status) == ("ACTIVE", "FAILED_WORKER_CRASH")
    logs = await store.get_execution_logs(run.id, level="ERROR")
    assert len(logs) == 1
    assert logs[0].message.startswith("Workflow marked as FAILED_WORKER_CRASH: worker dead-worker")
    assert await scanner.scan() == []  # the heartbeat is gone

    # Nothing else ran; a retry runs the interrupted step again.
    assert steps.RUNS[run.id] == ["Prepare", "Charge"]
    await crashed.retry()
    await crashed.next_step()
    assert crashed.status is WorkflowStatus.COMPLETED
    assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]


async def test_resume_policy_keeps_the_run_active_at_the_interrupted_step(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    scanner = ZombieScanner(store, stale_threshold_seconds=0, policy="resume")

    assert await scanner.recover(await scanner.scan()) == 1

    resumed = await builder.load_workflow(run.id)
    assert resumed.status is WorkflowStatus.ACTIVE and resumed.current_step_name == "Charge"
    assert resumed.metadata[RECOVERIES_KEY] == 1
    assert resumed.metadata[RECOVERED_KEY]["step"] == "Charge"
    assert (await audit_types(store, run.id))[-2:] == ["ZOMBIE_DETECTED", "WORKFLOW_RECOVERED"]
    assert await store.get_execution_logs(run.id, level="WARNING")
    # The presumed-dead driver cannot run anything over the recovery: its lease claim meets
    # the moved version before the step starts.
    with pytest.raises(ConcurrencyConflictError):
        await run.next_step()
    await resumed.next_step()
    assert resumed.status is WorkflowStatus.COMPLETED
    # Charge ran twice (the killed attempt, the recovery): at least once. Prepare, committed
    # before the crash, never ran again.
    assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]


async def test_a_resumed_async_step_is_dispatched_again(
    config: ConfigDir, builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    remote = await config.builder(store, execution_provider=LostTasks()).create_workflow(
        "Remote", {"order_id": "R-2"}
    )
    await remote.next_step()
    token = remote.progress.dispatch["Score"]
    await dead_worker(store, remote, "Score")

    scanner = ZombieScanner(store, stale_threshold_seconds=0, policy="resume")
    assert (await scanner.scan_and_recover())["zombies_recovered"] == 1

    resumed = await builder.load_workflow(remote.id)
    assert resumed.status is WorkflowStatus.ACTIVE and resumed.current_step_name == "Score"
    assert resumed.progress.dispatch == {} and "Score" not in resumed.progress.steps
    assert "waiting_for" not in resumed.metadata
    # The lost task's late report is ignored: its dispatch was voided.
    assert not await builder.complete_async_step(remote.id, 1, token, result={"score": 1})
    await resumed.next_step()  # dispatched again, inline this time
    assert resumed.status is WorkflowStatus.COMPLETED
    assert steps.RUNS[remote.id] == ["Prepare", "Score", "Finish"]


async def test_after_max_recoveries_the_run_fails(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    scanner = ZombieScanner(store, stale_threshold_seconds=0, policy="resume", max_recoveries=1)
    assert (await scanner.scan_and_recover())["zombies_recovered"] == 1
    again = await builder.load_workflow(run.id)
    steps.DYING.add(run.id)
    with pytest.raises(steps.ProcessDied):
        await again.next_step()
    await dead_worker(store, again, "Charge")

    assert (await scanner.scan_and_recover())["zombies_recovered"] == 1

    failed = await builder.load_workflow(run.id)
    assert failed.status is WorkflowStatus.FAILED_WORKER_CRASH
    assert failed.metadata[RECOVERIES_KEY] == 1
    assert failed.error_message is not None and "recovered 1 time(s)" in failed.error_message


async def test_a_dry_run_finds_but_writes_nothing(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    before = await store.load_workflow(run.id)

    summary = await ZombieScanner(store).scan_and_recover(stale_threshold_seconds=0, dry_run=True)

    assert (summary["zombies_found"], summary["zombies_recovered"], summary["dry_run"]) == (
        1,
        0,
        True,
    )
    assert await store.load_workflow(run.id) == before
    assert len(await ZombieScanner(store, stale_threshold_seconds=0).scan()) == 1


@pytest.mark.parametrize("policy", ["fail", "resume"])
async def test_racing_scanners_recover_each_zombie_once(
    builder: WorkflowBuilder, store: PersistenceProvider, policy: str
) -> None:
    runs = [await died_in_charge(builder) for _ in range(5)]
    scanners = [
        ZombieScanner(store, stale_threshold_seconds=0, policy=policy)  # type: ignore[arg-type]
        for _ in range(3)
    ]

    summaries = await asyncio.gather(*(scanner.scan_and_recover() for scanner in scanners))

    assert sum(summary["zombies_recovered"] for summary in summaries) == len(runs)
    for run in runs:
        assert len(await store.get_audit_log(run.id, event_type="ZOMBIE_DETECTED")) == 1
        stored = await store.load_workflow(run.id)
        assert stored is not None and stored.version == run.version + 1


async def test_the_daemon_scans_until_stopped(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    scanner = ZombieScanner(store, stale_threshold_seconds=0)
    daemon = asyncio.create_task(scanner.run_daemon(scan_interval_seconds=0.01))

    async def failed() -> bool:
        stored = await store.load_workflow(run.id)
        return stored is not None and stored.status == "FAILED_WORKER_CRASH"

    await until(failed, "the daemon to recover the zombie")
    scanner.stop_daemon()
    await asyncio.wait_for(daemon, timeout=10)


def test_options_are_checked(store: PersistenceProvider) -> None:
    with pytest.raises(ValueError, match="policy"):
        ZombieScanner(store, policy="retry")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_recoveries"):
        ZombieScanner(store, max_recoveries=-1)
    scanner = ZombieScanner(store)
    assert (scanner.stale_threshold_seconds, scanner.policy, scanner.max_recoveries) == (
        120,
        "fail",
        3,
    )
