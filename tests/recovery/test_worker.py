"""Worker: drives the runs with pending automatic work (resumed by the scanner, an interrupted
``automate_next`` chain, a child that goes on by itself, a parent whose child settled) so that
they finish with nobody calling ``next_step``; claims each first, so two workers never drive
the same run; leaves the runs that wait for their callers alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from ruvon.worker import DrivenRun, Worker
from ruvon.zombie_scanner import RECOVERED_KEY, RECOVERIES_KEY, ZombieScanner
from tests.recovery import steps
from tests.recovery.conftest import dead_worker, died_in_charge, until
from tests.support.config import ConfigDir, audit_types


async def _resume_zombies(store: PersistenceProvider) -> None:
    scanner = ZombieScanner(store, stale_threshold_seconds=0, policy="resume")
    assert (await scanner.scan_and_recover())["zombies_recovered"] >= 1


async def _heartbeats(store: PersistenceProvider, workflow_id: str) -> list[str]:
    beats = await store.get_stale_heartbeats(0)
    return [beat.worker_id for beat in beats if beat.workflow_id == workflow_id]


async def test_a_resumed_run_is_driven_to_its_end(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    await _resume_zombies(store)
    worker = Worker(builder, worker_id="w-1", idle_seconds=3600)

    done = await worker.run_once()

    assert done.driven == [DrivenRun(run.id, "recovered", "COMPLETED")]
    assert done.to_dict() == {
        "driven": [
            {"workflow_id": run.id, "reason": "recovered", "status": "COMPLETED", "error": None}
        ],
        "lost": 0,
    }
    finished = await builder.load_workflow(run.id)
    assert finished.status is WorkflowStatus.COMPLETED
    assert RECOVERED_KEY not in finished.metadata and finished.metadata[RECOVERIES_KEY] == 1
    # Prepare, committed before the crash, ran once; Charge ran again (at least once).
    assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]
    claimed = await store.get_audit_log(run.id, event_type="WORKFLOW_CLAIMED")
    assert [event.worker_id for event in claimed] == ["w-1"]
    assert await _heartbeats(store, run.id) == []
    assert (await worker.run_once()).driven == []


async def test_an_interrupted_chain_is_driven_once_idle(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder, "Chain")
    await store.delete_heartbeat(run.id)  # died before it ever beat: no zombie to scan

    assert (await Worker(builder, idle_seconds=3600).run_once()).driven == []  # not idle yet
    done = await Worker(builder, idle_seconds=0).run_once()

    assert done.driven == [DrivenRun(run.id, "automate_next", "COMPLETED")]
    assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]


async def test_runs_waiting_for_their_caller_are_left_alone(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    between = await builder.create_workflow("Manual", {"order_id": "M-1"})
    await between.next_step()
    created = await builder.create_workflow("Manual", {"order_id": "M-2"})
    retried = await died_in_charge(builder, "Chain")
    await ZombieScanner(store, stale_threshold_seconds=0).scan_and_recover()  # fail policy
    retried = await builder.load_workflow(retried.id)
    await retried.retry()
    worker = Worker(builder, idle_seconds=0)

    for _ in range(2):  # the second round decides from what the first one learned
        assert (await worker.run_once()).driven == []

    for run in (between, created, retried):
        assert (await builder.load_workflow(run.id)).status is WorkflowStatus.ACTIVE
    assert steps.RUNS[between.id] == ["First"] and created.id not in steps.RUNS


async def test_a_run_another_worker_drives_is_skipped(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Gated", {"order_id": "G-1"})
    await run.next_step()
    await dead_worker(store, run, "Slow")
    await _resume_zombies(store)
    first, second = Worker(builder, worker_id="first"), Worker(builder, worker_id="second")

    driving = asyncio.create_task(first.run_once())

    async def in_slow() -> bool:
        return steps.RUNS[run.id] == ["Prepare", "Slow"]

    await until(in_slow, "the first worker to be inside Slow")
    assert await _heartbeats(store, run.id) == ["first"]  # its lease
    assert (await second.run_once()).driven == []
    steps.GATES[run.id].set()
    done = await asyncio.wait_for(driving, timeout=30)

    assert done.driven == [DrivenRun(run.id, "recovered", "COMPLETED")]
    assert steps.RUNS[run.id] == ["Prepare", "Slow", "Ship"]


async def test_racing_workers_drive_a_run_once(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    runs = [await died_in_charge(builder) for _ in range(3)]
    await _resume_zombies(store)
    workers = [Worker(builder, worker_id=f"w-{n}") for n in range(3)]

    rounds = await asyncio.gather(*(worker.run_once() for worker in workers))

    driven = sorted(run.workflow_id for done in rounds for run in done.driven)
    assert driven == sorted(run.id for run in runs)
    for run in runs:
        assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]
        assert len(await store.get_audit_log(run.id, event_type="WORKFLOW_CLAIMED")) == 1


async def test_a_child_left_half_way_goes_on_and_its_parent_completes(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    parent = await builder.create_workflow("Parent", {"order_id": "P-1"})
    [child_id] = await _child_dies_in_charge(builder, parent.id)

    done = await Worker(builder, idle_seconds=0).run_once()

    assert done.driven == [DrivenRun(child_id, "runs on its own", "COMPLETED")]
    finished = await builder.load_workflow(parent.id)
    assert finished.status is WorkflowStatus.COMPLETED
    assert finished.state.visited == ["Open", "Close"]
    assert steps.RUNS[child_id] == ["Prepare", "Charge", "Charge", "Ship"]


async def test_a_parent_whose_child_ended_unheard_is_settled(
    config: ConfigDir,
    builder: WorkflowBuilder,
    store: PersistenceProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = config.builder(store)
    parent = await app.create_workflow("Parent", {"order_id": "P-2"})
    [child_id] = await _child_dies_in_charge(app, parent.id)

    async def unreachable(child: Any) -> None:
        raise ConnectionError("the process stopped before telling the parent")

    monkeypatch.setattr(app, "notify_parent", unreachable)
    child = await app.load_workflow(child_id)
    await child.run()
    assert child.status is WorkflowStatus.COMPLETED
    assert (await app.load_workflow(parent.id)).status is WorkflowStatus.PENDING_SUB_WORKFLOW

    done = await Worker(builder, idle_seconds=0).run_once()

    assert done.driven == [DrivenRun(parent.id, "child settled", "COMPLETED")]
    assert "SUB_WORKFLOW_COMPLETED" in await audit_types(store, parent.id)


async def test_an_interrupted_rollback_is_finished(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Saga", {"order_id": "S-1"})
    with pytest.raises(steps.ProcessDied):
        await run.next_step()  # Pay fails; the process dies compensating Book
    assert (await builder.load_workflow(run.id)).rolling_back

    done = await Worker(builder, idle_seconds=0).run_once()

    assert done.driven == [DrivenRun(run.id, "rollback", "FAILED_ROLLED_BACK")]
    assert steps.RUNS[run.id] == ["Book", "Pay", "undo Book", "undo Book"]


async def test_a_parked_retry_is_run_when_due(
    config: ConfigDir, builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    app = config.builder(store, retry_park_after_seconds=0)
    run = await app.create_workflow("Retrying", {"order_id": "T-1"})
    await run.next_step()
    assert run.status is WorkflowStatus.ACTIVE and run.current_step_name == "Charge"
    assert (await audit_types(store, run.id))[-1] == "STEP_RETRY_SCHEDULED"

    done = await Worker(builder, idle_seconds=0).run_once()

    assert done.driven == [DrivenRun(run.id, "retry due", "COMPLETED")]
    assert steps.RUNS[run.id] == ["Prepare", "Charge", "Charge", "Ship"]


async def test_run_forever_until_stopped(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await died_in_charge(builder)
    await _resume_zombies(store)
    worker = Worker(builder)
    task = asyncio.create_task(worker.run_forever(poll_interval_seconds=0.01))

    async def completed() -> bool:
        stored = await store.load_workflow(run.id)
        return stored is not None and stored.status == "COMPLETED"

    await until(completed, "the worker to complete the run")
    worker.stop()
    await asyncio.wait_for(task, timeout=10)
    with pytest.raises(ValueError):
        await worker.run_forever(poll_interval_seconds=0)


async def _child_dies_in_charge(builder: WorkflowBuilder, parent_id: str) -> list[str]:
    """Run the parent into its child, whose process dies in Charge; the child's id."""
    parent = await builder.load_workflow(parent_id)
    with pytest.raises(steps.ProcessDied):
        await parent.next_step()
    children = await builder.list_workflows(parent_workflow_id=parent_id)
    assert [record.status for record in children] == ["ACTIVE"]
    return [children[0].id]
