"""The compensation log (DB-07) in every store: entries written with a commit exist exactly when
the commit does, come back in order with their JSON values normalized, and go with their
workflow."""

from __future__ import annotations

import pytest

from ruvon.errors import ConcurrencyConflictError, WorkflowNotFoundError
from ruvon.providers.persistence import (
    COMPENSATE,
    COMPENSATE_FAILED,
    AuditEvent,
    CompensationEntry,
    CompensationLog,
    PersistenceProvider,
    WorkflowCommit,
)
from ruvon.serialization import Encoded, dumps
from tests.providers.test_persistence_compliance import is_utc, load, make_record, make_update


def _refund(**changes: object) -> CompensationEntry:
    fields: dict[str, object] = {
        "step_name": "charge",
        "step_index": 1,
        "action_type": COMPENSATE,
        "action_result": {"refunded": (10, 50)},
        "executed_by": "ops",
        "state_before": {"charged": True},
        "state_after": Encoded(dumps({"charged": False})),
    }
    fields.update(changes)
    return CompensationEntry(**fields)  # type: ignore[arg-type]


async def test_entries_of_a_commit_are_written_with_it(store: PersistenceProvider) -> None:
    assert isinstance(store, CompensationLog)
    await store.create_workflow(make_record("wf-1"))
    failed = _refund(
        step_name="reserve",
        step_index=0,
        action_type=COMPENSATE_FAILED,
        action_result=None,
        error_message="RuntimeError: stock service down",
        state_after={"charged": True},
    )
    version = await store.commit_workflow(
        WorkflowCommit(
            make_update("wf-1"),
            1,
            audit=[AuditEvent("COMPENSATION_EXECUTED", step_name="charge")],
            compensations=[_refund(), failed],
        )
    )
    assert version == 2

    log = await store.get_compensation_log("wf-1")
    assert [(e.step_name, e.step_index, e.action_type) for e in log] == [
        ("charge", 1, COMPENSATE),
        ("reserve", 0, COMPENSATE_FAILED),
    ]
    first, second = log
    assert first.workflow_id == "wf-1"
    assert first.action_result == {"refunded": [10, 50]}  # JSON-normalized
    assert (first.state_before, first.state_after) == ({"charged": True}, {"charged": False})
    assert first.executed_by == "ops" and first.error_message is None
    assert is_utc(first.executed_at)
    assert first.id is not None and second.id is not None and first.id < second.id
    assert second.error_message == "RuntimeError: stock service down"
    assert second.action_result is None
    assert await store.get_compensation_log("wf-1", limit=1) == [first]
    assert await store.get_compensation_log("wf-1", limit=-1) == []


async def test_a_stale_commit_writes_no_entry(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.commit_workflow(WorkflowCommit(make_update("wf-1"), 1))

    with pytest.raises(ConcurrencyConflictError):
        await store.commit_workflow(
            WorkflowCommit(make_update("wf-1"), 1, compensations=[_refund()])
        )
    with pytest.raises(WorkflowNotFoundError):
        await store.commit_workflow(
            WorkflowCommit(make_update("wf-9"), 1, compensations=[_refund()])
        )

    assert await store.get_compensation_log("wf-1") == []
    assert (await load(store, "wf-1")).version == 2


async def test_an_unstorable_entry_writes_nothing(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))

    with pytest.raises(TypeError):
        await store.commit_workflow(
            WorkflowCommit(
                make_update("wf-1"), 1, compensations=[_refund(action_result={"x": object()})]
            )
        )
    with pytest.raises(ValueError, match="action_type"):
        await store.commit_workflow(
            WorkflowCommit(make_update("wf-1"), 1, compensations=[_refund(action_type="UNDO")])
        )

    assert await store.get_compensation_log("wf-1") == []
    assert (await load(store, "wf-1")).version == 1


async def test_log_compensation_outside_a_commit(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))

    await store.log_compensation("wf-1", _refund(executed_by=None))

    [entry] = await store.get_compensation_log("wf-1")
    assert entry.action_type == COMPENSATE and entry.executed_by is None
    with pytest.raises(WorkflowNotFoundError):
        await store.log_compensation("wf-9", _refund())
    with pytest.raises(ValueError, match="action_type"):
        await store.log_compensation("wf-1", _refund(action_type="UNDO"))
    assert await store.get_compensation_log("wf-9") == []


async def test_entries_go_with_their_workflow(store: PersistenceProvider) -> None:
    await store.create_workflow(make_record("wf-1"))
    await store.create_workflow(make_record("wf-2"))
    await store.log_compensation("wf-1", _refund())
    await store.log_compensation("wf-2", _refund(step_name="other"))

    assert await store.delete_workflow("wf-1")

    assert await store.get_compensation_log("wf-1") == []
    assert [e.step_name for e in await store.get_compensation_log("wf-2")] == ["other"]
