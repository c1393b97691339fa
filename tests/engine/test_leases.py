"""Leases in the engine: one driver per run at a time (on every backend, through ``store``).

A ``next_step`` call claims the run's lease before its step function runs, so a second
``Workflow`` object of the same run is refused (``WorkflowLeasedError``) while the first is
inside a step, before anything of its own runs; the first call's last commit releases the
lease, and the second object, now stale, meets a plain conflict until it is reloaded. A chain
of ``automate_next`` steps claims once; a step that outlives its lease has it renewed with its
heartbeats, so that nobody can take the run from it.

Steps that must be "inside" while the test acts wait for an :class:`asyncio.Event` the test
sets; nothing here depends on how fast anything runs.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, Literal

import pytest

from ruvon import (
    ConcurrencyConflictError,
    WorkflowBuilder,
    WorkflowLeasedError,
    WorkflowStatus,
)
from ruvon.models import StepContext
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord
from ruvon.zombie_scanner import ZombieScanner
from tests.support.config import STEPS, ConfigDir, audit_types, workflow
from tests.support.order_steps import OrderState

HERE = "tests.engine.test_leases"

CALLS: defaultdict[str, list[str]] = defaultdict(list)
"""workflow id -> the steps whose function was called, in order."""
ENTERED: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
"""workflow id -> set when a gated step has started."""
GATES: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
"""workflow id -> set by the test to let a gated step end."""
STORES: dict[str, PersistenceProvider] = {}
"""workflow id -> the store a watching step reads its own row from."""
SEEN: defaultdict[str, list[tuple[int, str | None]]] = defaultdict(list)
"""workflow id -> (version, lease owner) of the row as each watching step saw it."""


async def gated(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Runs until the test opens its gate."""
    CALLS[context.workflow_id].append(context.step_name)
    ENTERED[context.workflow_id].set()
    await GATES[context.workflow_id].wait()
    return {"visited": [*state.visited, context.step_name]}


async def watching(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Notes the row's version and lease as they are while the step runs."""
    CALLS[context.workflow_id].append(context.step_name)
    record = await STORES[context.workflow_id].load_workflow(context.workflow_id)
    assert record is not None
    SEEN[context.workflow_id].append((record.version, record.lease_owner))
    return {"visited": [*state.visited, context.step_name]}


@pytest.fixture
def lease_config(config: ConfigDir) -> ConfigDir:
    config.write(
        "Gated",
        workflow(
            "Gated",
            f"""
            - name: Hold
              function: {HERE}.gated
            - name: Then
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Watched",
        workflow(
            "Watched",
            f"""
            - name: A
              function: {HERE}.watching
              automate_next: true
            - name: B
              function: {HERE}.watching
              automate_next: true
            - name: C
              function: {HERE}.watching
            - name: D
              function: {HERE}.watching
            """,
        ),
    )
    config.write(
        "Ends",
        workflow(
            "Ends",
            f"""
            - name: Prepare
              function: {STEPS}.mark
              automate_next: true
            - name: Review
              function: {STEPS}.pause_for_review
            - name: Resumed
              function: {STEPS}.record_review
              automate_next: true
            - name: Broken
              function: {STEPS}.always_fails
            """,
        ),
    )
    return config


async def row(persistence: PersistenceProvider, workflow_id: str) -> WorkflowRecord:
    record = await persistence.load_workflow(workflow_id)
    assert record is not None
    return record


async def inside(workflow_id: str, running: asyncio.Task[Any]) -> None:
    """Wait until the gated step of ``workflow_id`` has started (the call must not end)."""
    entered = asyncio.ensure_future(ENTERED[workflow_id].wait())
    done, _ = await asyncio.wait({entered, running}, timeout=60, return_when="FIRST_COMPLETED")
    if entered not in done:
        entered.cancel()
        if running in done:
            running.result()  # raises what ended the call
        raise AssertionError(f"the gated step of {workflow_id} never started")


async def outlive(end: datetime | None) -> None:
    """Wait until ``end`` (a lease's end, on this machine's clock) has passed."""
    assert end is not None
    await asyncio.sleep(max((end - datetime.now(timezone.utc)).total_seconds(), 0.0) + 0.05)


def worker_of(builder: WorkflowBuilder) -> str:
    assert builder.step_monitor is not None
    return builder.step_monitor.worker_id


async def test_a_second_driver_is_refused_before_its_step_runs(
    lease_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = lease_config.builder(persistence)
    elsewhere = lease_config.builder(persistence)
    first = await builder.create_workflow("Gated", {"order_id": "L-1"})
    stale = await elsewhere.load_workflow(first.id)  # loaded before the first call claims
    running = asyncio.create_task(first.next_step())
    try:
        await inside(first.id, running)
        claimed = await row(persistence, first.id)
        assert claimed.version == 2  # created (1), claimed (2)
        assert claimed.lease_owner is not None
        assert claimed.lease_owner.startswith(f"{worker_of(builder)}/")
        during = await elsewhere.load_workflow(first.id)  # loaded under the live lease
        assert during.version == 2

        with pytest.raises(WorkflowLeasedError) as refused:
            await during.next_step()
        assert refused.value.owner == claimed.lease_owner
        assert refused.value.expires_at == claimed.lease_expires_at
        with pytest.raises(ConcurrencyConflictError):
            await stale.next_step()  # behind the claim's version: refused as well

        assert CALLS[first.id] == ["Hold"]  # neither ran anything
        assert await row(persistence, first.id) == claimed  # nor wrote anything
    finally:
        GATES[first.id].set()
        await running

    ended = await row(persistence, first.id)
    assert (ended.version, ended.current_step) == (3, "Then")
    assert (ended.lease_owner, ended.lease_expires_at) == (None, None)
    # The lease is free, but both other objects are behind: a plain conflict until reloaded.
    for behind in (during, stale):
        with pytest.raises(ConcurrencyConflictError) as conflict:
            await behind.next_step()
        assert not isinstance(conflict.value, WorkflowLeasedError)
    assert CALLS[first.id] == ["Hold"]

    reloaded = await elsewhere.load_workflow(first.id)
    await reloaded.next_step()
    assert reloaded.status is WorkflowStatus.COMPLETED
    assert (await row(persistence, first.id)).lease_owner is None


async def test_a_chain_claims_once_and_its_last_commit_releases(
    lease_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = lease_config.builder(persistence)
    run = await builder.create_workflow("Watched", {"order_id": "L-2"})
    STORES[run.id] = persistence

    await run.next_step()

    assert CALLS[run.id] == ["A", "B", "C"]
    # One claim (version 2), then each step's commit; the lease kept all along.
    owners = {owner for _, owner in SEEN[run.id]}
    assert [version for version, _ in SEEN[run.id]] == [2, 3, 4]
    assert len(owners) == 1 and None not in owners
    stored = await row(persistence, run.id)
    assert stored.version == run.version == 5  # created 1 + 1 claim + 3 commits
    assert stored.current_step == "D"
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)

    # The next call claims anew.
    await run.next_step()
    assert run.status is WorkflowStatus.COMPLETED
    assert SEEN[run.id][-1][0] == 6
    assert (await row(persistence, run.id)).version == 7


async def test_a_call_that_pauses_or_fails_releases_the_lease(
    lease_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = lease_config.builder(persistence)
    run = await builder.create_workflow("Ends", {"order_id": "L-6"})

    await run.next_step()  # Prepare, then Review pauses

    assert run.status is WorkflowStatus.PAUSED
    paused = await row(persistence, run.id)
    assert paused.version == 4  # created, claimed, Prepare, Review
    assert (paused.lease_owner, paused.lease_expires_at) == (None, None)

    with pytest.raises(RuntimeError, match="card declined"):
        await run.resume({"reviewer": "ann"})  # Resumed, then Broken fails the run

    failed = await row(persistence, run.id)
    assert (failed.status, failed.version) == ("FAILED", 7)  # claimed, Resumed, the failure
    assert (failed.lease_owner, failed.lease_expires_at) == (None, None)
    # Nobody drives it: another object may act on it at once.
    other = await builder.load_workflow(run.id)
    await other.retry()
    retried = await row(persistence, run.id)
    assert (retried.status, retried.current_step, retried.version) == ("ACTIVE", "Broken", 8)


async def test_cancel_from_another_object_is_refused_while_the_lease_is_live(
    lease_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = lease_config.builder(persistence)
    first = await builder.create_workflow("Gated", {"order_id": "L-3"})
    running = asyncio.create_task(first.next_step())
    try:
        await inside(first.id, running)
        other = await builder.load_workflow(first.id)
        claimed = await row(persistence, first.id)

        with pytest.raises(WorkflowLeasedError) as refused:
            await other.cancel("changed my mind")

        assert refused.value.owner == claimed.lease_owner
        assert await row(persistence, first.id) == claimed
        assert "WORKFLOW_CANCELLED" not in await audit_types(persistence, first.id)
    finally:
        GATES[first.id].set()
        await running

    assert first.current_step_name == "Then"
    after = await builder.load_workflow(first.id)
    await after.cancel("changed my mind")  # nobody drives it now
    assert (await row(persistence, first.id)).status == WorkflowStatus.CANCELLED.value


async def test_a_long_step_keeps_its_lease(
    lease_config: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = lease_config.builder(persistence, heartbeat_interval_seconds=0.2, lease_seconds=1.0)
    try:
        run = await builder.create_workflow("Gated", {"order_id": "L-4"})
        running = asyncio.create_task(run.next_step())
        try:
            await inside(run.id, running)
            claimed = await row(persistence, run.id)
            assert claimed.version == 2

            # Past the end of the lease as claimed: the heartbeats have renewed it.
            await outlive(claimed.lease_expires_at)
            renewed = await row(persistence, run.id)
            assert claimed.lease_expires_at is not None
            assert renewed.lease_expires_at is not None
            assert renewed.lease_expires_at > claimed.lease_expires_at
            assert renewed.lease_owner == claimed.lease_owner
            assert renewed.version == 2  # renewals write no version
            beats = await persistence.get_stale_heartbeats(-3600)
            assert [beat.workflow_id for beat in beats] == [run.id]  # renewed with its heartbeat
            # ... and it goes on moving forward while the step runs.
            await outlive(renewed.lease_expires_at)
            later = await row(persistence, run.id)
            assert later.lease_expires_at is not None
            assert later.lease_expires_at > renewed.lease_expires_at

            other = await builder.load_workflow(run.id)
            with pytest.raises(WorkflowLeasedError) as refused:
                # Bounded: were the lease lost, the other call would wait at the gate.
                await asyncio.wait_for(other.next_step(), timeout=30)
            assert refused.value.owner == claimed.lease_owner
            assert CALLS[run.id] == ["Hold"]
        finally:
            GATES[run.id].set()
            await running  # its commit goes through under the renewed lease

        assert run.current_step_name == "Then"
        ended = await row(persistence, run.id)
        assert (ended.version, ended.current_step) == (3, "Then")
        assert (ended.lease_owner, ended.lease_expires_at) == (None, None)
    finally:
        await builder.close()


@pytest.mark.parametrize("policy", ["fail", "resume"])
async def test_a_driver_that_renews_its_lease_after_a_scan_keeps_its_run(
    lease_config: ConfigDir, persistence: PersistenceProvider, policy: Literal["fail", "resume"]
) -> None:
    builder = lease_config.builder(persistence)
    run = await builder.create_workflow("Gated", {"order_id": "L-5"})
    grant = await persistence.claim_lease(run.id, run.version, "slow-driver", 0.05)
    await outlive(grant.expires_at)
    scanner = ZombieScanner(persistence, stale_threshold_seconds=0, policy=policy)
    zombies = await scanner.scan()
    assert [(z["workflow_id"], z["source"]) for z in zombies] == [(run.id, "lease")]

    # The driver was slow, not dead: it renews its lease before the recovery is written.
    renewed = await persistence.renew_lease(run.id, "slow-driver", 0.3)
    assert renewed is not None
    alive = await row(persistence, run.id)

    assert await scanner.recover(zombies) == 0

    assert await row(persistence, run.id) == alive
    assert "ZOMBIE_DETECTED" not in await audit_types(persistence, run.id)

    # Once that lease has run out too (and nobody renews it), the run is recovered.
    await outlive(renewed)
    zombies = await scanner.scan()
    assert [(z["workflow_id"], z["source"]) for z in zombies] == [(run.id, "lease")]
    assert await scanner.recover(zombies) == 1
    recovered = await row(persistence, run.id)
    assert recovered.status == ("FAILED_WORKER_CRASH" if policy == "fail" else "ACTIVE")
    assert (recovered.lease_owner, recovered.version) == (None, alive.version + 1)
