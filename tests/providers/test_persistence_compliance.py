"""The persistence contract, checked on every provider (memory, SQLite, PostgreSQL).

Each test takes ``store`` and runs once per backend; the memory provider is the reference the
SQL ones must match. The schema itself (migrations, dialect parity) is checked in
``test_migrations``, the queries of ``list_workflows``/``count_workflows`` in
``test_workflow_queries`` and the handling of JSON values in ``test_json_values``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowNotFoundError
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
    WorkflowUpdate,
)

UTC = timezone.utc

RICH_STATE: dict[str, Any] = {
    "customer": {"name": "Zoë Ångström", "city": "Zürich ✓ 東京 🚀", "vip": True},
    "items": [{"sku": f"SKU-{i}", "qty": i, "price": 9.99 + i / 4} for i in range(5)],
    "ratios": [0.1, -2.25, 1.5e-7, 12345.678],
    "big": 2**53,
    "nothing": None,
    "nested": {"a": {"b": {"c": [[], {}, [1, [2, [3]]]]}}},
    "quote": "single ' double \" backslash \\ newline \n tab \t",
}


def make_record(workflow_id: str = "wf-1", **changes: Any) -> WorkflowRecord:
    """A workflow record with sensible values; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "id": workflow_id,
        "workflow_type": "OrderFlow",
        "workflow_version": "1.0",
        "definition_snapshot": {"workflow_type": "OrderFlow", "steps": [{"name": "validate"}]},
        "state_model_path": "tests.support.OrderState",
        "status": "ACTIVE",
        "state": {"order_id": workflow_id, "total": 10.5},
        "current_step": "validate",
        "current_step_index": 0,
    }
    fields.update(changes)
    return WorkflowRecord(**fields)


def make_update(workflow_id: str = "wf-1", **changes: Any) -> WorkflowUpdate:
    """A step commit's update for ``workflow_id``; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "workflow_id": workflow_id,
        "status": "ACTIVE",
        "state": {"order_id": workflow_id, "total": 11.0, "validated": True},
        "current_step": "charge",
        "current_step_index": 1,
        "metadata": {"attempt": 1},
        "completed_steps_stack": [{"step": "validate", "index": 0}],
    }
    fields.update(changes)
    return WorkflowUpdate(**fields)


async def load(store: PersistenceProvider, workflow_id: str) -> WorkflowRecord:
    """The stored workflow, which must exist."""
    record = await store.load_workflow(workflow_id)
    assert record is not None, f"workflow {workflow_id!r} is missing"
    return record


def is_utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0)


# -- create and load -----------------------------------------------------------------------


async def test_create_and_load_round_trip_every_field(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("parent-1"))
    created_at = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    completed_at = datetime(2024, 3, 1, 0, 0, 1, 7, tzinfo=UTC)
    record = make_record(
        "wf-rich",
        workflow_version="2.3.1",
        definition_snapshot={"steps": [{"name": "a", "type": "STANDARD"}], "ünï": "cödé"},
        status="PAUSED",
        state=RICH_STATE,
        current_step="approve",
        current_step_index=3,
        metadata={"source": "api", "tags": ["x", "y"], "score": 0.75},
        completed_steps_stack=[{"step": "a", "state": {"k": 1}}, {"step": "b"}],
        progress={"steps": {"a": "COMPLETED", "b": "RUNNING"}, "last_result": {"n": 1.5}},
        saga_mode=True,
        parent_execution_id="parent-1",
        blocked_on_child_id="child-9",
        owner_id="alice",
        org_id="acme",
        data_region="eu-west-1",
        priority=9,
        idempotency_key="idem-rich",
        idempotency_hash="sha256:5f2b",
        error_message="nothing yet",
        created_at=created_at,
        completed_at=completed_at,
    )

    stored = await store.create_workflow(record, [AuditEvent("WORKFLOW_CREATED")])
    loaded = await load(store, "wf-rich")

    assert loaded == stored
    assert loaded.version == 1
    expected = {
        name: getattr(record, name)
        for name in record.__dataclass_fields__
        if name not in ("version", "updated_at")
    }
    assert {name: getattr(loaded, name) for name in expected} == expected
    assert loaded.state["ratios"] == [0.1, -2.25, 1.5e-7, 12345.678]
    assert loaded.state["customer"]["city"] == "Zürich ✓ 東京 🚀"
    assert all(is_utc(t) for t in (loaded.created_at, loaded.updated_at, loaded.completed_at))
    assert loaded.created_at == created_at
    assert loaded.completed_at == completed_at


async def test_create_fills_defaults_and_timestamps(store: PersistenceProvider) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    stored = await store.create_workflow(make_record("wf-1", version=7))
    loaded = await load(store, "wf-1")

    assert loaded == stored
    assert loaded.version == 1
    assert loaded.metadata == {}
    assert loaded.completed_steps_stack == []
    assert loaded.progress == {}
    assert loaded.saga_mode is False
    assert loaded.priority == 5
    assert loaded.completed_at is None
    assert is_utc(loaded.created_at) and is_utc(loaded.updated_at)
    assert loaded.created_at is not None and loaded.updated_at is not None
    assert before < loaded.created_at <= loaded.updated_at < before + timedelta(seconds=65)


async def test_load_missing_returns_none(store: PersistenceProvider) -> None:
    assert await store.load_workflow("does-not-exist") is None


async def test_loaded_records_are_copies(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    first = await load(store, "wf-1")
    first.state["total"] = -1
    first.metadata["mutated"] = True
    first.progress["mutated"] = True
    again = await load(store, "wf-1")
    assert again.state["total"] == 10.5
    assert "mutated" not in again.metadata
    assert again.progress == {}


async def test_idempotency_key_returns_the_existing_workflow(store: PersistenceProvider) -> None:
    first = await store.create_workflow(
        make_record("wf-1", idempotency_key="order-42"), [AuditEvent("WORKFLOW_CREATED")]
    )
    second = await store.create_workflow(
        make_record("wf-2", idempotency_key="order-42", state={"other": True}),
        [AuditEvent("WORKFLOW_CREATED")],
    )

    assert second == first
    assert second.id == "wf-1"
    assert await store.load_workflow("wf-2") is None
    assert [event.event_type for event in await store.get_audit_log("wf-1")] == ["WORKFLOW_CREATED"]
    assert await store.get_audit_log("wf-2") == []
    assert [record.id for record in await store.list_workflows()] == ["wf-1"]


async def test_a_taken_key_returns_the_existing_hash_for_the_caller_to_compare(
    store: PersistenceProvider,
) -> None:
    first = await store.create_workflow(
        make_record("wf-1", idempotency_key="order-42", idempotency_hash="hash-a")
    )
    assert first.idempotency_hash == "hash-a"
    assert (await load(store, "wf-1")).idempotency_hash == "hash-a"

    again = await store.create_workflow(
        make_record("wf-2", idempotency_key="order-42", idempotency_hash="hash-b")
    )

    assert (again.id, again.idempotency_hash) == ("wf-1", "hash-a")
    assert await store.load_workflow("wf-2") is None
    await store.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
    assert (await load(store, "wf-1")).idempotency_hash == "hash-a"
    assert (await store.create_workflow(make_record("wf-3"))).idempotency_hash is None


async def test_same_id_and_key_again_returns_the_existing_workflow(
    store: PersistenceProvider,
) -> None:
    first = await store.create_workflow(make_record("wf-1", idempotency_key="k"))
    assert await store.create_workflow(make_record("wf-1", idempotency_key="k")) == first


async def test_duplicate_id_is_a_persistence_error(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])

    with pytest.raises(PersistenceError, match="wf-1") as caught:
        await store.create_workflow(make_record("wf-1", state={"other": 1}), [AuditEvent("X")])

    assert type(caught.value) is PersistenceError
    loaded = await load(store, "wf-1")
    assert loaded.state == {"order_id": "wf-1", "total": 10.5}
    assert len(await store.get_audit_log("wf-1")) == 1


# -- commit --------------------------------------------------------------------------------


async def test_commit_bumps_version_and_writes_everything(store: PersistenceProvider) -> None:
    created = await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    completed_at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    update = make_update(
        "wf-1",
        status="COMPLETED",
        state=RICH_STATE,
        saga_mode=True,
        blocked_on_child_id="child-1",
        error_message="almost",
        completed_at=completed_at,
        progress={"steps": {"validate": "COMPLETED"}, "last_result": {"ok": True}},
    )

    version = await store.commit_workflow(
        WorkflowCommit(
            update,
            expected_version=1,
            audit=[
                AuditEvent(
                    "STEP_COMPLETED",
                    step_name="validate",
                    old_status="ACTIVE",
                    new_status="COMPLETED",
                    data={"result": {"ok": True}, "ß": "ü"},
                    user_id="u1",
                    worker_id="w1",
                    duration_ms=12.5,
                ),
                AuditEvent("WORKFLOW_COMPLETED"),
            ],
            metrics=[
                MetricPoint(
                    "step_duration_ms", 12.5, unit="ms", step_name="validate", tags={"a": 1}
                ),
                MetricPoint("custom", 3, workflow_type="Other"),
            ],
            logs=[LogEntry("INFO", "validated", step_name="validate", metadata={"n": 1})],
        )
    )

    assert version == 2
    loaded = await load(store, "wf-1")
    assert loaded.version == 2
    assert (loaded.status, loaded.state, loaded.current_step, loaded.current_step_index) == (
        "COMPLETED",
        RICH_STATE,
        "charge",
        1,
    )
    assert loaded.metadata == {"attempt": 1}
    assert loaded.completed_steps_stack == [{"step": "validate", "index": 0}]
    assert loaded.progress == {"steps": {"validate": "COMPLETED"}, "last_result": {"ok": True}}
    assert loaded.saga_mode is True
    assert loaded.blocked_on_child_id == "child-1"
    assert loaded.error_message == "almost"
    assert loaded.completed_at == completed_at
    assert loaded.created_at == created.created_at
    assert loaded.updated_at is not None and created.updated_at is not None
    assert is_utc(loaded.updated_at) and loaded.updated_at >= created.updated_at
    assert (loaded.workflow_type, loaded.definition_snapshot) == (
        created.workflow_type,
        created.definition_snapshot,
    )

    audit = await store.get_audit_log("wf-1")
    assert [event.event_type for event in audit] == [
        "WORKFLOW_CREATED",
        "STEP_COMPLETED",
        "WORKFLOW_COMPLETED",
    ]
    step = audit[1]
    assert (step.workflow_id, step.step_name, step.old_status, step.new_status) == (
        "wf-1",
        "validate",
        "ACTIVE",
        "COMPLETED",
    )
    assert (step.data, step.user_id, step.worker_id, step.duration_ms) == (
        {"result": {"ok": True}, "ß": "ü"},
        "u1",
        "w1",
        12.5,
    )
    assert audit[1].timestamp == audit[2].timestamp == loaded.updated_at
    ids = [event.id or 0 for event in audit]
    assert 0 < ids[0] < ids[1] < ids[2]

    metrics = await store.get_workflow_metrics(workflow_id="wf-1")
    assert [(m.metric_name, m.metric_value, m.workflow_type) for m in metrics] == [
        ("step_duration_ms", 12.5, "OrderFlow"),
        ("custom", 3.0, "Other"),
    ]
    assert (metrics[0].unit, metrics[0].step_name, metrics[0].tags) == ("ms", "validate", {"a": 1})
    assert is_utc(metrics[0].recorded_at)

    logs = await store.get_execution_logs("wf-1")
    assert [(e.level, e.message, e.step_name, e.metadata) for e in logs] == [
        ("INFO", "validated", "validate", {"n": 1}),
        # The run's status change, read from its audit entry (ruvon.providers.step_log).
        (
            "INFO",
            "Workflow completed",
            None,
            {"audit_id": ids[2], "event_type": "WORKFLOW_COMPLETED"},
        ),
    ]
    assert logs[0].workflow_id == "wf-1" and is_utc(logs[0].logged_at)


async def test_progress_is_stored_at_create_and_replaced_by_every_commit(
    store: PersistenceProvider,
) -> None:
    progress = {"steps": {"a": "COMPLETED"}, "last_result": {"items": (1, 2)}, "n": 0.25}
    created = await store.create_workflow(make_record("wf-1", progress=progress))
    normalized = {"steps": {"a": "COMPLETED"}, "last_result": {"items": [1, 2]}, "n": 0.25}
    assert created.progress == normalized  # through the codec: the tuple comes back a list
    assert (await load(store, "wf-1")).progress == normalized

    later = {"steps": {"a": "COMPLETED", "b": "FAILED"}, "error": {"type": "ValueError"}}
    await store.commit_workflow(WorkflowCommit(make_update("wf-1", progress=later), 1))
    assert (await load(store, "wf-1")).progress == later
    # The update carries the whole document: one left at its default clears it.
    await store.commit_workflow(WorkflowCommit(make_update("wf-1"), 2))
    assert (await load(store, "wf-1")).progress == {}
    # A stale commit writes no progress either.
    with pytest.raises(ConcurrencyConflictError):
        await store.commit_workflow(WorkflowCommit(make_update("wf-1", progress=later), 2))
    assert (await load(store, "wf-1")).progress == {}


async def test_concurrent_commits_keep_each_workflows_progress(store: PersistenceProvider) -> None:
    # Concurrent commits of different workflows may share a transaction (group commit).
    ids = [f"wf-{n}" for n in range(6)]
    for workflow_id in ids:
        await store.create_workflow(make_record(workflow_id, progress={"created": workflow_id}))
    versions = await asyncio.gather(
        *(
            store.commit_workflow(WorkflowCommit(make_update(i, progress={"step": i}), 1))
            for i in ids
        )
    )
    assert versions == [2] * len(ids)
    assert [(await load(store, i)).progress for i in ids] == [{"step": i} for i in ids]
    assert [r.progress for r in await store.list_workflows()] == [{"step": i} for i in ids[::-1]]


async def test_successive_commits_count_versions(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    for expected in range(1, 6):
        version = await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", current_step_index=expected), expected_version=expected
            )
        )
        assert version == expected + 1
    assert (await load(store, "wf-1")).version == 6


async def test_stale_version_conflicts_and_writes_nothing(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    await store.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
    before = await load(store, "wf-1")

    with pytest.raises(ConcurrencyConflictError) as caught:
        await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", status="FAILED", state={"lost": True}),
                expected_version=1,
                audit=[AuditEvent("STEP_COMPLETED")],
                metrics=[MetricPoint("step_duration_ms", 1.0)],
                logs=[LogEntry("ERROR", "should not be written")],
            )
        )

    assert caught.value.workflow_id == "wf-1"
    assert caught.value.expected_version == 1
    assert await store.load_workflow("wf-1") == before
    assert [event.event_type for event in await store.get_audit_log("wf-1")] == ["WORKFLOW_CREATED"]
    assert await store.get_workflow_metrics(workflow_id="wf-1") == []
    assert await store.get_execution_logs("wf-1") == []


async def test_commit_on_missing_workflow_is_not_found(store: PersistenceProvider) -> None:
    with pytest.raises(WorkflowNotFoundError) as caught:
        await store.commit_workflow(
            WorkflowCommit(make_update("ghost"), expected_version=1, audit=[AuditEvent("X")])
        )
    assert caught.value.workflow_id == "ghost"
    assert await store.get_audit_log("ghost") == []


async def test_concurrent_commits_with_the_same_version(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))

    results = await asyncio.gather(
        store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", state={"winner": "a"}),
                expected_version=1,
                audit=[AuditEvent("A")],
            )
        ),
        store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", state={"winner": "b"}),
                expected_version=1,
                audit=[AuditEvent("B")],
            )
        ),
        return_exceptions=True,
    )

    assert sorted(type(result).__name__ for result in results) == [
        "ConcurrencyConflictError",
        "int",
    ]
    winner = "a" if results[0] == 2 else "b"
    loaded = await load(store, "wf-1")
    assert (loaded.version, loaded.state) == (2, {"winner": winner})
    assert [event.event_type for event in await store.get_audit_log("wf-1")] == [winner.upper()]


# -- list and delete -----------------------------------------------------------------------


async def _populate(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("p-1", owner_id="alice"))
    await store.create_workflow(make_record("c-1", parent_execution_id="p-1", status="COMPLETED"))
    await store.create_workflow(
        make_record("c-2", parent_execution_id="p-1", status="WAITING_HUMAN_INPUT")
    )
    await store.create_workflow(
        make_record("x-1", workflow_type="Refund", status="WAITING_HUMAN", owner_id="alice")
    )
    await store.create_workflow(make_record("x-2", workflow_type="Refund", status="FAILED"))


async def _ids(store: PersistenceProvider, **filters: Any) -> list[str]:
    return [record.id for record in await store.list_workflows(**filters)]


async def test_list_is_newest_first(store: PersistenceProvider) -> None:
    await _populate(store)
    assert await _ids(store) == ["x-2", "x-1", "c-2", "c-1", "p-1"]


async def test_list_filters(store: PersistenceProvider) -> None:
    await _populate(store)

    assert await _ids(store, status="ACTIVE") == ["p-1"]
    assert await _ids(store, status=["COMPLETED", "FAILED"]) == ["x-2", "c-1"]
    assert await _ids(store, status="WAITING_HUMAN") == ["x-1", "c-2"]
    assert await _ids(store, status="WAITING_HUMAN_INPUT") == ["x-1", "c-2"]
    assert await _ids(store, status=[]) == []
    assert await _ids(store, workflow_type="Refund") == ["x-2", "x-1"]
    assert await _ids(store, parent_workflow_id="p-1") == ["c-2", "c-1"]
    assert await _ids(store, owner_id="alice") == ["x-1", "p-1"]
    assert await _ids(store, owner_id="alice", workflow_type="Refund") == ["x-1"]
    assert await _ids(store, status="CANCELLED") == []


async def test_list_pages(store: PersistenceProvider) -> None:
    await _populate(store)

    assert await _ids(store, limit=2) == ["x-2", "x-1"]
    assert await _ids(store, limit=2, offset=2) == ["c-2", "c-1"]
    assert await _ids(store, limit=2, offset=4) == ["p-1"]
    assert await _ids(store, offset=10) == []
    assert await _ids(store, limit=0) == []


async def test_list_order_does_not_change_on_commit(store: PersistenceProvider) -> None:
    await _populate(store)
    await store.commit_workflow(WorkflowCommit(make_update("p-1"), expected_version=1))
    assert await _ids(store) == ["x-2", "x-1", "c-2", "c-1", "p-1"]


async def test_list_rejects_unknown_status(store: PersistenceProvider) -> None:
    with pytest.raises(ValueError):
        await store.list_workflows(status="NOT_A_STATUS")


async def test_delete_cascades(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    await store.create_workflow(make_record("wf-2"), [AuditEvent("WORKFLOW_CREATED")])
    for workflow_id in ("wf-1", "wf-2"):
        await store.commit_workflow(
            WorkflowCommit(
                make_update(workflow_id),
                expected_version=1,
                audit=[AuditEvent("STEP")],
                metrics=[MetricPoint("m", 1.0)],
                logs=[LogEntry("INFO", "hello")],
            )
        )
        await store.upsert_heartbeat(workflow_id, "worker-1")
    await asyncio.sleep(0.01)

    assert await store.delete_workflow("wf-1") is True

    assert await store.load_workflow("wf-1") is None
    assert await store.get_audit_log("wf-1") == []
    assert await store.get_execution_logs("wf-1") == []
    assert await store.get_workflow_metrics(workflow_id="wf-1") == []
    assert [beat.workflow_id for beat in await store.get_stale_heartbeats(0)] == ["wf-2"]
    assert len(await store.get_audit_log("wf-2")) == 2
    assert len(await store.get_workflow_metrics()) == 1
    assert await store.delete_workflow("wf-1") is False


async def test_delete_frees_the_idempotency_key(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1", idempotency_key="k"))
    await store.delete_workflow("wf-1")
    again = await store.create_workflow(make_record("wf-2", idempotency_key="k"))
    assert again.id == "wf-2"


# -- audit, logs, metrics ------------------------------------------------------------------


async def test_audit_order_filter_and_limit(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    await store.create_workflow(make_record("wf-2"), [AuditEvent("WORKFLOW_CREATED")])
    await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1"),
            expected_version=1,
            audit=[AuditEvent("STEP_STARTED", step_name="a"), AuditEvent("STEP_COMPLETED")],
        )
    )
    await store.log_audit_event("wf-1", AuditEvent("USER_ACTION", user_id="bob", data={"x": 1}))
    await store.log_audit_event("wf-1", AuditEvent("STEP_STARTED", step_name="b"))

    audit = await store.get_audit_log("wf-1")
    assert [event.event_type for event in audit] == [
        "WORKFLOW_CREATED",
        "STEP_STARTED",
        "STEP_COMPLETED",
        "USER_ACTION",
        "STEP_STARTED",
    ]
    assert all(event.workflow_id == "wf-1" and is_utc(event.timestamp) for event in audit)
    ids = [event.id or 0 for event in audit]
    assert ids[0] > 0 and ids == sorted(ids)
    assert (audit[3].user_id, audit[3].data) == ("bob", {"x": 1})

    started = await store.get_audit_log("wf-1", event_type="STEP_STARTED")
    assert [event.step_name for event in started] == ["a", "b"]
    assert [e.event_type for e in await store.get_audit_log("wf-1", limit=2)] == [
        "WORKFLOW_CREATED",
        "STEP_STARTED",
    ]
    assert len(await store.get_audit_log("wf-2")) == 1


async def test_step_lines_are_read_from_the_audit_entries(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1"),
            expected_version=1,
            audit=[
                AuditEvent(
                    "STEP_EXECUTED", step_name="a", data={"jumped_to": "c"}, duration_ms=1.25
                ),
                AuditEvent("STEP_DISPATCHED", step_name="b", data={"token": "t1"}),
                AuditEvent("WORKFLOW_PAUSED", step_name="b", new_status="WAITING_HUMAN"),
            ],
            logs=[LogEntry("DEBUG", "logged by a", step_name="a")],
        )
    )
    await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1", status="FAILED"),
            expected_version=2,
            audit=[
                AuditEvent("STEP_FAILED", step_name="c", data={"error": "boom"}),
                AuditEvent("WORKFLOW_FAILED", step_name="c"),  # no line of its own
            ],
            logs=[LogEntry("ERROR", "Step failed: boom", step_name="c")],
        )
    )

    async def lines(**filters: Any) -> list[tuple[str, str | None, str]]:
        logs = await store.get_execution_logs("wf-1", **filters)
        return [(entry.level, entry.step_name, entry.message) for entry in logs]

    everything = [
        ("INFO", "a", "Starting step: a (completed in 1.2 ms; jumped to c)"),
        ("INFO", "b", "Starting step: b (dispatched, token t1)"),
        ("DEBUG", "a", "logged by a"),
        ("INFO", "b", "Workflow waits (WAITING_HUMAN) at step b"),
        ("INFO", "c", "Starting step: c (failed)"),
        ("ERROR", "c", "Step failed: boom"),
    ]
    assert await lines() == everything
    assert await lines(limit=2) == everything[:2]
    assert await lines(step_name="a") == [everything[0], everything[2]]
    assert await lines(level="info") == [everything[i] for i in (0, 1, 3, 4)]
    assert await lines(level="ERROR") == [everything[5]]
    assert await lines(level="DEBUG", step_name="b") == []
    logs = await store.get_execution_logs("wf-1")
    assert logs[0].id is None and logs[2].id is not None  # a derived line is no log row
    assert logs[0].workflow_id == "wf-1" and is_utc(logs[0].logged_at)


async def test_execution_logs_filters(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.create_workflow(make_record("wf-2"))
    await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1"),
            expected_version=1,
            logs=[LogEntry("INFO", "one", step_name="a"), LogEntry("DEBUG", "two", step_name="a")],
        )
    )
    await store.log_execution("wf-1", LogEntry("ERROR", "three", step_name="b"))
    await store.log_execution("wf-1", LogEntry("INFO", "four", step_name="b", metadata={"k": []}))
    await store.log_execution("wf-2", LogEntry("INFO", "other"))

    async def messages(**filters: Any) -> list[str]:
        return [entry.message for entry in await store.get_execution_logs("wf-1", **filters)]

    assert await messages() == ["one", "two", "three", "four"]
    assert await messages(step_name="b") == ["three", "four"]
    assert await messages(level="info") == ["one", "four"]
    assert await messages(level="INFO", step_name="b") == ["four"]
    assert await messages(limit=3) == ["one", "two", "three"]
    assert (await store.get_execution_logs("wf-1", step_name="b"))[1].metadata == {"k": []}


async def test_metrics_filters(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.create_workflow(make_record("wf-2", workflow_type="Refund"))
    await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1"),
            expected_version=1,
            metrics=[MetricPoint("step_duration_ms", 1.0), MetricPoint("items", 20)],
        )
    )
    await store.record_metric("wf-2", MetricPoint("step_duration_ms", 2.0, unit="ms"))
    await store.record_metric("wf-1", MetricPoint("step_duration_ms", 3.0))

    async def values(**filters: Any) -> list[float]:
        return [point.metric_value for point in await store.get_workflow_metrics(**filters)]

    assert await values() == [1.0, 20.0, 2.0, 3.0]
    assert await values(workflow_id="wf-1") == [1.0, 20.0, 3.0]
    assert await values(workflow_type="Refund") == [2.0]
    assert await values(metric_name="step_duration_ms") == [1.0, 2.0, 3.0]
    assert await values(metric_name="step_duration_ms", workflow_type="OrderFlow") == [1.0, 3.0]
    assert await values(limit=2) == [1.0, 20.0]
    point = (await store.get_workflow_metrics(workflow_type="Refund"))[0]
    assert (point.workflow_id, point.unit, point.workflow_type) == ("wf-2", "ms", "Refund")


async def test_entries_for_a_missing_workflow_are_not_found(store: PersistenceProvider) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await store.log_audit_event("ghost", AuditEvent("X"))
    with pytest.raises(WorkflowNotFoundError):
        await store.log_execution("ghost", LogEntry("INFO", "x"))
    with pytest.raises(WorkflowNotFoundError):
        await store.record_metric("ghost", MetricPoint("m", 1.0))
    with pytest.raises(WorkflowNotFoundError):
        await store.upsert_heartbeat("ghost", "worker-1")
    assert await store.get_workflow_metrics() == []


# -- heartbeats ----------------------------------------------------------------------------


async def test_heartbeats(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.create_workflow(make_record("wf-2"))
    await store.upsert_heartbeat("wf-1", "worker-1", "validate", {"pid": 1})
    await store.upsert_heartbeat("wf-2", "worker-2")
    await asyncio.sleep(0.02)
    await store.upsert_heartbeat("wf-1", "worker-3", "charge", {"pid": 3})
    await asyncio.sleep(0.02)

    stale = await store.get_stale_heartbeats(0)
    assert [beat.workflow_id for beat in stale] == ["wf-2", "wf-1"]
    assert (stale[1].worker_id, stale[1].current_step, stale[1].metadata) == (
        "worker-3",
        "charge",
        {"pid": 3},
    )
    assert (stale[0].worker_id, stale[0].current_step, stale[0].metadata) == (
        "worker-2",
        None,
        None,
    )
    assert all(is_utc(beat.last_heartbeat) for beat in stale)
    assert stale[0].last_heartbeat < stale[1].last_heartbeat
    assert await store.get_stale_heartbeats(3600) == []

    await store.delete_heartbeat("wf-1")
    await store.delete_heartbeat("wf-1")
    assert [beat.workflow_id for beat in await store.get_stale_heartbeats(0)] == ["wf-2"]
