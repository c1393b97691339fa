"""JSON values go through one codec in every store: what comes back is identical, and what the
codec cannot serialize is rejected alike, before anything is written.

The contract (``WorkflowStore.commit_workflow``): every JSON value is serialized with
``ruvon.serialization.dumps`` first; a value it rejects raises the codec's own ``TypeError``
(not a ``PersistenceError``) and the call writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from ruvon.errors import PersistenceError
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
)
from ruvon.serialization import dumps, loads
from tests.providers.test_persistence_compliance import load, make_record, make_update

ODD_STATE: dict[str, Any] = {
    "pair": (1, 2),
    "nested": {"a": {"b": (3, {"c": (4, 5)}), "list": [(6,), []]}},
    "when": datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc),
}
"""A state as a careless step might leave it: tuples, nested dicts, a datetime."""

NORMALIZED_STATE: dict[str, Any] = {
    "pair": [1, 2],
    "nested": {"a": {"b": [3, {"c": [4, 5]}], "list": [[6], []]}},
    "when": loads(dumps(ODD_STATE["when"])),
}

ODD: dict[str, Any] = {"t": (1, (2, 3)), "d": {"x": (None, True)}}
NORMALIZED: dict[str, Any] = {"t": [1, [2, 3]], "d": {"x": [None, True]}}


def _codec_error() -> type[BaseException]:
    """The exception type the codec raises for an unserializable value."""
    try:
        dumps({"bad": object()})
    except Exception as exc:  # whatever the codec raises is the contract
        return type(exc)
    raise AssertionError("the codec serialized object()")


CODEC_ERROR = _codec_error()


def test_the_codec_rejects_objects_with_a_type_error() -> None:
    assert issubclass(CODEC_ERROR, TypeError)
    assert not issubclass(CODEC_ERROR, PersistenceError)


# -- what comes back -------------------------------------------------------------------------


async def test_every_json_value_comes_back_normalized(store: PersistenceProvider) -> None:
    created = await store.create_workflow(
        make_record(
            "wf-1",
            state=ODD_STATE,
            metadata=ODD,
            completed_steps_stack=[{"step": "a", "result": ODD}],
            progress={"last_result": ODD},
            definition_snapshot={"steps": ({"name": "a"},), "extra": ODD},
        ),
        [AuditEvent("WORKFLOW_CREATED", data=ODD)],
    )
    expected_snapshot = {"steps": [{"name": "a"}], "extra": NORMALIZED}
    for record in (created, await load(store, "wf-1")):
        assert record.state == NORMALIZED_STATE
        assert record.metadata == NORMALIZED
        assert record.completed_steps_stack == [{"step": "a", "result": NORMALIZED}]
        assert record.progress == {"last_result": NORMALIZED}
        assert record.definition_snapshot == expected_snapshot
        assert isinstance(record.state["pair"], list)

    await store.commit_workflow(
        WorkflowCommit(
            make_update(
                "wf-1", state=ODD_STATE, metadata=ODD, completed_steps_stack=[ODD], progress=ODD
            ),
            expected_version=1,
            audit=[AuditEvent("STEP", data=ODD)],
            metrics=[MetricPoint("m", 1.0, tags=ODD)],
            logs=[LogEntry("INFO", "x", metadata=ODD)],
        )
    )
    await store.log_audit_event("wf-1", AuditEvent("USER", data=ODD))
    await store.log_execution("wf-1", LogEntry("INFO", "y", metadata=ODD))
    await store.record_metric("wf-1", MetricPoint("n", 2.0, tags=ODD))
    await store.upsert_heartbeat("wf-1", "worker", "a", ODD)

    record = await load(store, "wf-1")
    assert (record.state, record.metadata) == (NORMALIZED_STATE, NORMALIZED)
    assert (record.completed_steps_stack, record.progress) == ([NORMALIZED], NORMALIZED)
    assert [event.data for event in await store.get_audit_log("wf-1")] == [NORMALIZED] * 3
    assert [entry.metadata for entry in await store.get_execution_logs("wf-1")] == [NORMALIZED] * 2
    assert [point.tags for point in await store.get_workflow_metrics()] == [NORMALIZED] * 2
    assert [beat.metadata for beat in await store.get_stale_heartbeats(-60)] == [NORMALIZED]

    task = await store.create_task_record("wf-1", "a", 0, task_data=ODD)
    assert task.task_data == NORMALIZED
    done = await store.update_task_status(task.task_id, "COMPLETED", result=ODD)
    assert (done.task_data, done.result) == (NORMALIZED, NORMALIZED)
    again = await store.get_task_record(task.task_id)
    assert again is not None and (again.task_data, again.result) == (NORMALIZED, NORMALIZED)


async def test_returned_values_are_fresh_copies(store: PersistenceProvider) -> None:
    state = {"items": [1, 2]}
    await store.create_workflow(make_record("wf-1", state=state))
    state["items"].append(3)  # the caller's object is not the stored value
    await store.upsert_heartbeat("wf-1", "worker", metadata={"n": [1]})
    await store.log_audit_event("wf-1", AuditEvent("E", data={"n": [1]}))

    (await load(store, "wf-1")).state["items"].append(4)
    (await store.get_stale_heartbeats(-60))[0].metadata["n"].append(2)  # type: ignore[index]
    (await store.get_audit_log("wf-1"))[0].data["n"].append(2)  # type: ignore[index]

    assert (await load(store, "wf-1")).state == {"items": [1, 2]}
    assert (await store.get_stale_heartbeats(-60))[0].metadata == {"n": [1]}
    assert (await store.get_audit_log("wf-1"))[0].data == {"n": [1]}


def _comparable(record: WorkflowRecord) -> dict[str, Any]:
    values = record.to_dict()
    for name in ("created_at", "updated_at"):
        values.pop(name)
    # Random per commit (made by the store when the commit names none), in every store.
    assert (values.pop("commit_token") is None) == (record.version == 1)
    return values


@pytest.mark.postgres
async def test_memory_sqlite_and_postgres_return_identical_values(
    memory_store: MemoryPersistenceProvider,
    sqlite_store: SQLitePersistenceProvider,
    postgres_store: PostgresPersistenceProvider,
) -> None:
    results = []
    for store in (memory_store, sqlite_store, postgres_store):
        created = await store.create_workflow(
            make_record("wf-1", state=ODD_STATE, metadata=ODD, progress=ODD)
        )
        await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", state=ODD_STATE, completed_steps_stack=[ODD], progress=ODD),
                expected_version=1,
                audit=[AuditEvent("STEP", data=ODD)],
            )
        )
        loaded = await load(store, "wf-1")
        audit = await store.get_audit_log("wf-1")
        results.append((_comparable(created), _comparable(loaded), [e.data for e in audit]))

    memory, sqlite, postgres = results
    assert memory == sqlite == postgres
    assert memory[1]["state"] == NORMALIZED_STATE
    assert memory[1]["completed_steps_stack"] == [NORMALIZED]


# -- what is rejected ------------------------------------------------------------------------

BAD: dict[str, Any] = {"fine": 1, "deep": {"bad": object()}}


async def _snapshot(store: PersistenceProvider) -> tuple[Any, ...]:
    """Everything stored about wf-1."""
    return (
        await store.load_workflow("wf-1"),
        await store.get_audit_log("wf-1"),
        await store.get_execution_logs("wf-1"),
        await store.get_workflow_metrics(workflow_id="wf-1"),
        await store.get_stale_heartbeats(-60),
    )


async def test_unserializable_state_in_a_commit_writes_nothing(
    store: PersistenceProvider,
) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    await store.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=1))
    before = await _snapshot(store)

    with pytest.raises(TypeError) as caught:
        await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", state={"ok": (1, 2), "bad": object()}, status="COMPLETED"),
                expected_version=2,
                audit=[AuditEvent("STEP_COMPLETED")],
                metrics=[MetricPoint("step_duration_ms", 1.0)],
                logs=[LogEntry("INFO", "done")],
            )
        )

    assert type(caught.value) is CODEC_ERROR
    assert await _snapshot(store) == before
    # The workflow is unharmed: the next commit at the same version goes through.
    assert await store.commit_workflow(WorkflowCommit(make_update("wf-1"), expected_version=2)) == 3


@pytest.mark.parametrize(
    "commit_arguments",
    [
        {"update": {"metadata": BAD}},
        {"update": {"completed_steps_stack": [BAD]}},
        {"update": {"progress": BAD}},
        {"audit": [AuditEvent("STEP", data=BAD)]},
        {"metrics": [MetricPoint("m", 1.0, tags=BAD)]},
        {"logs": [LogEntry("INFO", "x", metadata=BAD)]},
    ],
    ids=["metadata", "saga-stack", "progress", "audit-data", "metric-tags", "log-metadata"],
)
async def test_any_unserializable_value_of_a_commit_writes_nothing(
    store: PersistenceProvider, commit_arguments: dict[str, Any]
) -> None:
    await store.create_workflow(make_record("wf-1"), [AuditEvent("WORKFLOW_CREATED")])
    before = await _snapshot(store)
    entries = {name: value for name, value in commit_arguments.items() if name != "update"}

    with pytest.raises(CODEC_ERROR):
        await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1", **commit_arguments.get("update", {})),
                expected_version=1,
                audit=[AuditEvent("FIRST"), *entries.pop("audit", [])],
                **entries,
            )
        )

    assert await _snapshot(store) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"state": BAD},
        {"metadata": BAD},
        {"completed_steps_stack": [BAD]},
        {"progress": BAD},
        {"definition_snapshot": BAD},
    ],
    ids=["state", "metadata", "saga-stack", "progress", "snapshot"],
)
async def test_unserializable_create_writes_nothing(
    store: PersistenceProvider, fields: dict[str, Any]
) -> None:
    with pytest.raises(CODEC_ERROR):
        await store.create_workflow(make_record("wf-1", **fields), [AuditEvent("CREATED")])
    with pytest.raises(CODEC_ERROR):
        await store.create_workflow(make_record("wf-2"), [AuditEvent("CREATED", data=BAD)])

    assert await store.load_workflow("wf-1") is None
    assert await store.load_workflow("wf-2") is None
    assert await store.count_workflows() == 0
    assert await store.get_audit_log("wf-1") == []
    # The id is still free.
    assert (await store.create_workflow(make_record("wf-1"))).version == 1


async def test_unserializable_entries_and_tasks_write_nothing(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.upsert_heartbeat("wf-1", "worker", "a", {"n": 1})
    task = await store.create_task_record("wf-1", "a", 0, task_data={"n": 1})
    before = await _snapshot(store)

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.log_audit_event("wf-1", AuditEvent("E", data=BAD)),
        lambda: store.log_execution("wf-1", LogEntry("INFO", "x", metadata=BAD)),
        lambda: store.record_metric("wf-1", MetricPoint("m", 1.0, tags=BAD)),
        lambda: store.upsert_heartbeat("wf-1", "other-worker", "b", BAD),
        lambda: store.create_task_record("wf-1", "b", 1, task_data=BAD),
        lambda: store.update_task_status(task.task_id, "COMPLETED", result=BAD),
    ]
    for call in calls:
        with pytest.raises(CODEC_ERROR):
            await call()

    assert await _snapshot(store) == before
    assert await store.get_task_record(task.task_id) == task
    claimed = await store.claim_next_task("w")  # the rejected task was not queued
    assert claimed is not None and claimed.task_id == task.task_id
    assert await store.claim_next_task("w") is None
