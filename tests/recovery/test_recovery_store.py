"""The recovery part of the persistence contract, on every store: a recovery wins only while
the heartbeat it read is still there and the row is at the version read; a claim wins only when
the run has no heartbeat and is at the version read; a loser writes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ruvon import WorkflowBuilder
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
)


async def _heartbeat_at(store: PersistenceProvider, workflow_id: str) -> datetime | None:
    for beat in await store.get_stale_heartbeats(0):
        if beat.workflow_id == workflow_id:
            return beat.last_heartbeat
    return None


async def _record(store: PersistenceProvider, workflow_id: str) -> WorkflowRecord:
    record = await store.load_workflow(workflow_id)
    assert record is not None
    return record


def _failing(record: WorkflowRecord) -> WorkflowCommit:
    update = record.as_update(status="FAILED_WORKER_CRASH", error_message="worker died")
    audit = [AuditEvent("ZOMBIE_DETECTED", old_status=record.status, new_status=update.status)]
    logs = [LogEntry("ERROR", "Workflow marked as FAILED_WORKER_CRASH: worker died")]
    return WorkflowCommit(update, record.version, audit=audit, logs=logs)


async def _stale_run(builder: WorkflowBuilder, store: PersistenceProvider) -> WorkflowRecord:
    run = await builder.create_workflow("Manual", {"order_id": "R-1"})
    await store.upsert_heartbeat(run.id, "dead-worker", "First")
    return await _record(store, run.id)


async def test_a_recovery_writes_the_commit_and_deletes_the_heartbeat(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    record = await _stale_run(builder, store)
    at = await _heartbeat_at(store, record.id)
    assert at is not None

    assert await store.recover_stale_workflow(_failing(record), at) is True

    stored = await _record(store, record.id)
    assert (stored.status, stored.version) == ("FAILED_WORKER_CRASH", record.version + 1)
    assert stored.error_message == "worker died"
    assert stored.state == record.state and stored.progress == record.progress
    assert await _heartbeat_at(store, record.id) is None
    latest = await store.latest_audit_event(record.id)
    assert latest is not None and latest.event_type == "ZOMBIE_DETECTED"
    logs = await store.get_execution_logs(record.id, level="ERROR")
    assert [entry.message for entry in logs] == [
        "Workflow marked as FAILED_WORKER_CRASH: worker died"
    ]


async def test_a_refreshed_heartbeat_or_a_moved_row_makes_the_recovery_lose(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    record = await _stale_run(builder, store)
    stale = await _heartbeat_at(store, record.id)
    assert stale is not None
    await store.upsert_heartbeat(record.id, "dead-worker", "First")  # alive after all
    fresh = await _heartbeat_at(store, record.id)
    assert fresh is not None and fresh != stale
    assert await store.recover_stale_workflow(_failing(record), stale) is False

    moved = WorkflowCommit(record.as_update(), record.version)
    assert await store.commit_workflow(moved) == record.version + 1
    assert await store.recover_stale_workflow(_failing(record), fresh) is False

    await store.delete_heartbeat(record.id)
    current = await _record(store, record.id)
    assert await store.recover_stale_workflow(_failing(current), fresh) is False
    assert (await _record(store, record.id)).status == "ACTIVE"
    assert [e.event_type for e in await store.get_audit_log(record.id)] == ["WORKFLOW_STARTED"]


async def test_of_two_concurrent_recoveries_one_wins(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    record = await _stale_run(builder, store)
    at = await _heartbeat_at(store, record.id)
    assert at is not None

    outcomes = await asyncio.gather(
        *(store.recover_stale_workflow(_failing(record), at) for _ in range(4))
    )

    assert sorted(outcomes) == [False, False, False, True]
    detected = await store.get_audit_log(record.id, event_type="ZOMBIE_DETECTED")
    assert len(detected) == 1
    assert (await _record(store, record.id)).version == record.version + 1


async def test_a_claim_creates_the_claimers_heartbeat(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Manual", {"order_id": "C-1"})
    record = await _record(store, run.id)
    claimed = AuditEvent("WORKFLOW_CLAIMED", worker_id="w-1")
    commit = WorkflowCommit(record.as_update(metadata={"x": 1}), record.version, [claimed])

    assert await store.claim_workflow(commit, "w-1", metadata={"reason": "test"}) is True

    stored = await _record(store, run.id)
    assert (stored.version, stored.metadata, stored.status) == (
        record.version + 1,
        {"x": 1},
        "ACTIVE",
    )
    beats = [beat for beat in await store.get_stale_heartbeats(0) if beat.workflow_id == run.id]
    assert [(b.worker_id, b.current_step, b.metadata) for b in beats] == [
        ("w-1", "First", {"reason": "test"})
    ]
    latest = await store.latest_audit_event(run.id)
    assert latest is not None and (latest.event_type, latest.worker_id) == (
        "WORKFLOW_CLAIMED",
        "w-1",
    )


async def test_a_claim_loses_to_a_heartbeat_or_a_moved_row(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Manual", {"order_id": "C-2"})
    record = await _record(store, run.id)
    await store.upsert_heartbeat(run.id, "someone-else", "First")
    commit = WorkflowCommit(record.as_update(), record.version, [AuditEvent("WORKFLOW_CLAIMED")])
    assert await store.claim_workflow(commit, "w-1") is False

    await store.delete_heartbeat(run.id)
    await run.next_step()  # the row moves on
    assert await store.claim_workflow(commit, "w-1") is False
    assert await _heartbeat_at(store, run.id) is None
    stored = await _record(store, run.id)
    assert stored.version == run.version > record.version  # as the step left it
    assert await store.get_audit_log(run.id, event_type="WORKFLOW_CLAIMED") == []


async def test_of_two_concurrent_claims_one_wins(
    builder: WorkflowBuilder, store: PersistenceProvider
) -> None:
    run = await builder.create_workflow("Manual", {"order_id": "C-3"})
    record = await _record(store, run.id)

    def claim(worker: str) -> WorkflowCommit:
        return WorkflowCommit(
            record.as_update(), record.version, [AuditEvent("WORKFLOW_CLAIMED", worker_id=worker)]
        )

    outcomes = await asyncio.gather(
        *(store.claim_workflow(claim(f"w-{n}"), f"w-{n}") for n in range(4))
    )

    assert sorted(outcomes) == [False, False, False, True]
    winner = f"w-{outcomes.index(True)}"
    beats = [beat for beat in await store.get_stale_heartbeats(0) if beat.workflow_id == run.id]
    assert [beat.worker_id for beat in beats] == [winner]


async def test_latest_audit_event(builder: WorkflowBuilder, store: PersistenceProvider) -> None:
    assert await store.latest_audit_event("no-such-workflow") is None
    run = await builder.create_workflow("Manual", {"order_id": "L-1"})
    first = await store.latest_audit_event(run.id)
    assert first is not None and first.event_type == "WORKFLOW_STARTED"
    await run.next_step()
    latest = await store.latest_audit_event(run.id)
    assert latest is not None
    assert (latest.event_type, latest.step_name, latest.workflow_id) == (
        "STEP_EXECUTED",
        "First",
        run.id,
    )
    assert latest.data is not None and latest.data["result"] == {"visited": ["First"]}
