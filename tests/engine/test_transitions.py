"""Status transitions: the whole ALLOWED_TRANSITIONS table, every transition the engine makes
today (seen in the store, the audit log and by an observer), and the operations it forbids."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ruvon import (
    ALLOWED_TRANSITIONS,
    InvalidTransitionError,
    Workflow,
    WorkflowStateError,
    WorkflowStatus,
)
from ruvon.builder import WorkflowBuilder
from ruvon.models import check_transition
from ruvon.providers.persistence import PersistenceProvider, WorkflowCommit, WorkflowUpdate
from tests.support.config import ConfigDir, audit_log

S = WorkflowStatus

# -- the table ------------------------------------------------------------------------------


def test_every_status_has_a_row() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(WorkflowStatus)


@pytest.mark.parametrize(
    ("old", "new"), list(itertools.product(WorkflowStatus, WorkflowStatus)), ids=str
)
def test_check_transition_follows_the_table(old: WorkflowStatus, new: WorkflowStatus) -> None:
    if new in ALLOWED_TRANSITIONS[old]:
        check_transition(old, new)
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition(old, new)
        assert isinstance(caught.value, WorkflowStateError)
        assert (caught.value.old_status, caught.value.new_status) == (old.value, new.value)


def test_terminal_statuses_lead_nowhere_but_retry() -> None:
    for status in (S.COMPLETED, S.CANCELLED, S.FAILED_ROLLED_BACK):
        assert ALLOWED_TRANSITIONS[status] == frozenset()
    for status in (S.FAILED, S.FAILED_WORKER_CRASH, S.FAILED_CHILD_WORKFLOW):
        assert ALLOWED_TRANSITIONS[status] == frozenset({S.ACTIVE})


# -- what the engine does -------------------------------------------------------------------


class StatusRecorder:
    """Only the hook it needs, and only two of its parameters."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    async def on_workflow_status_changed(self, old_status: str, new_status: str) -> None:
        self.changes.append((old_status, new_status))


async def put_in_status(
    persistence: PersistenceProvider, workflow_id: str, status: WorkflowStatus
) -> None:
    """Store ``status`` the way another component (zombie scanner, parent) would."""
    record = await persistence.load_workflow(workflow_id)
    assert record is not None
    update = WorkflowUpdate(
        workflow_id=record.id,
        status=status.value,
        state=record.state,
        current_step=record.current_step,
        current_step_index=record.current_step_index,
        metadata=record.metadata,
        error_message=f"{status.value} for the test",
    )
    await persistence.commit_workflow(WorkflowCommit(update, expected_version=record.version))


Drive = Callable[[WorkflowBuilder, PersistenceProvider], Awaitable[Workflow]]


async def _step_with_more_to_come(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Simple", {"order_id": "T"})
    await workflow.next_step()
    await workflow.jump_to_step("Three")  # audited as ACTIVE -> ACTIVE
    return workflow


async def _complete(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Simple", {"order_id": "T"})
    await workflow.run()
    return workflow


async def _fail(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Fragile", {"order_id": "T"})
    with pytest.raises(RuntimeError):
        await workflow.run()
    return workflow


async def _roll_back(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Checkout", {"order_id": "T"})
    with pytest.raises(RuntimeError):
        await workflow.run()
    return workflow


async def _pause(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Pause", {"order_id": "T"})
    await workflow.next_step()
    return workflow


async def _wait_for_human(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("ApprovalFirst", {"order_id": "T"})
    await workflow.next_step()
    return workflow


async def _cancel_active(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("Simple", {"order_id": "T"})
    await workflow.cancel("customer changed their mind")
    return workflow


async def _resume_pause(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await _pause(b, p)
    await workflow.next_step({"reviewer": "Zoe"})
    return workflow


async def _resume_pause_then_fail(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await b.create_workflow("PauseThenFail", {"order_id": "T"})
    await workflow.next_step()
    with pytest.raises(RuntimeError):
        await workflow.next_step({"reviewer": "Zoe"})
    return workflow


async def _cancel_pause(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await _pause(b, p)
    await workflow.cancel()
    return workflow


async def _resume_human(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await _wait_for_human(b, p)
    await workflow.next_step({"approved": False, "approver": "Ann"})
    return workflow


async def _cancel_human(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await _wait_for_human(b, p)
    await workflow.cancel("nobody answered")
    return workflow


async def _retry_failed(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
    workflow = await _fail(b, p)
    await workflow.retry(from_step="Finish")
    await workflow.next_step()
    return workflow


def _retry_stored(status: WorkflowStatus) -> Drive:
    async def drive(b: WorkflowBuilder, p: PersistenceProvider) -> Workflow:
        created = await b.create_workflow("Simple", {"order_id": "T"})
        await created.next_step()
        await put_in_status(p, created.id, status)
        workflow = await b.load_workflow(created.id)
        assert workflow.status is status
        assert workflow.current_step == "Two"
        await workflow.retry()
        assert workflow.error_message is None
        await workflow.run()
        return workflow

    return drive


TRANSITIONS: list[tuple[WorkflowStatus, WorkflowStatus, Drive, WorkflowStatus]] = [
    # (from, to, how, status at the end)
    (S.ACTIVE, S.ACTIVE, _step_with_more_to_come, S.ACTIVE),
    (S.ACTIVE, S.COMPLETED, _complete, S.COMPLETED),
    (S.ACTIVE, S.FAILED, _fail, S.FAILED),
    (S.ACTIVE, S.FAILED_ROLLED_BACK, _roll_back, S.FAILED_ROLLED_BACK),
    (S.ACTIVE, S.PAUSED, _pause, S.PAUSED),
    (S.ACTIVE, S.WAITING_HUMAN, _wait_for_human, S.WAITING_HUMAN),
    (S.ACTIVE, S.CANCELLED, _cancel_active, S.CANCELLED),
    (S.PAUSED, S.ACTIVE, _resume_pause, S.COMPLETED),
    (S.PAUSED, S.ACTIVE, _resume_pause_then_fail, S.FAILED),
    (S.PAUSED, S.CANCELLED, _cancel_pause, S.CANCELLED),
    (S.WAITING_HUMAN, S.ACTIVE, _resume_human, S.COMPLETED),
    (S.WAITING_HUMAN, S.CANCELLED, _cancel_human, S.CANCELLED),
    (S.FAILED, S.ACTIVE, _retry_failed, S.COMPLETED),
    (S.FAILED_WORKER_CRASH, S.ACTIVE, _retry_stored(S.FAILED_WORKER_CRASH), S.COMPLETED),
    (S.FAILED_CHILD_WORKFLOW, S.ACTIVE, _retry_stored(S.FAILED_CHILD_WORKFLOW), S.COMPLETED),
]


@pytest.mark.parametrize(
    ("old", "new", "drive", "final"),
    TRANSITIONS,
    ids=[f"{old}->{new}-{drive.__name__.strip('_')}" for old, new, drive, _ in TRANSITIONS],
)
async def test_the_engine_makes_the_transition(
    config: ConfigDir,
    persistence: PersistenceProvider,
    old: WorkflowStatus,
    new: WorkflowStatus,
    drive: Drive,
    final: WorkflowStatus,
) -> None:
    assert new in ALLOWED_TRANSITIONS[old]
    recorder = StatusRecorder()
    builder = config.builder(persistence, workflow_observer=recorder)

    workflow = await drive(builder, persistence)

    audited = [
        (event.old_status, event.new_status)
        for event in await audit_log(persistence, workflow.id)
        if event.old_status is not None
    ]
    assert (old.value, new.value) in audited
    # Every audited change is allowed by the table.
    for before, after in audited:
        assert after is not None
        check_transition(S(before), S(after))
    if old is not new:
        assert (old.value, new.value) in recorder.changes
    # Observers see the same changes, each allowed by the table.
    for before, after in recorder.changes:
        check_transition(S(before), S(after))
    assert recorder.changes == [(b, a) for b, a in audited if b != a]
    assert workflow.status is final
    loaded = await config.builder(persistence).load_workflow(workflow.id)
    assert loaded.status is final


async def test_cancel_records_the_reason(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await _cancel_human(builder, persistence)
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is S.CANCELLED
    assert loaded.metadata["cancellation_reason"] == "nobody answered"
    assert loaded.completed_at is not None
    assert loaded.current_step is None
    cancelled = (await audit_log(persistence, workflow.id))[-1]
    assert cancelled.event_type == "WORKFLOW_CANCELLED"
    assert cancelled.data == {"reason": "nobody answered"}


# -- forbidden operations -------------------------------------------------------------------

ENDED: dict[str, Drive] = {
    "COMPLETED": _complete,
    "CANCELLED": _cancel_active,
    "FAILED_ROLLED_BACK": _roll_back,
    "FAILED": _fail,
}


async def _assert_unchanged(
    persistence: PersistenceProvider, workflow: Workflow, before: Any
) -> None:
    after = await persistence.load_workflow(workflow.id)
    assert after == before
    assert workflow.status.value == before.status


@pytest.mark.parametrize("ended", ["COMPLETED", "CANCELLED", "FAILED_ROLLED_BACK"])
async def test_next_step_on_an_ended_workflow_is_refused(
    builder: WorkflowBuilder, persistence: PersistenceProvider, ended: str
) -> None:
    workflow = await ENDED[ended](builder, persistence)
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(WorkflowStateError, match=ended):
        await workflow.next_step({"x": 1})
    with pytest.raises(WorkflowStateError):
        await (await builder.load_workflow(workflow.id)).next_step()

    await _assert_unchanged(persistence, workflow, before)


@pytest.mark.parametrize("ended", ["COMPLETED", "CANCELLED", "FAILED_ROLLED_BACK", "FAILED"])
async def test_cancel_on_a_terminal_workflow_is_refused(
    builder: WorkflowBuilder, persistence: PersistenceProvider, ended: str
) -> None:
    workflow = await ENDED[ended](builder, persistence)
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(WorkflowStateError, match="cannot be cancelled"):
        await workflow.cancel("too late")

    await _assert_unchanged(persistence, workflow, before)


@pytest.mark.parametrize("ended", ["COMPLETED", "CANCELLED", "FAILED_ROLLED_BACK"])
async def test_retry_is_only_for_retryable_failures(
    builder: WorkflowBuilder, persistence: PersistenceProvider, ended: str
) -> None:
    workflow = await ENDED[ended](builder, persistence)
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(WorkflowStateError, match="retried"):
        await workflow.retry()

    await _assert_unchanged(persistence, workflow, before)


async def test_retry_of_an_active_workflow_is_refused(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("Simple", {"order_id": "T"})
    with pytest.raises(WorkflowStateError):
        await workflow.retry()


async def test_jump_on_a_completed_workflow_is_refused(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await _complete(builder, persistence)
    before = await persistence.load_workflow(workflow.id)

    with pytest.raises(WorkflowStateError):
        await workflow.jump_to_step("One")

    await _assert_unchanged(persistence, workflow, before)


async def test_cancelling_a_waiting_workflow_clears_what_it_waited_for(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "C-9"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.WAITING_HUMAN
    assert "waiting_for" in workflow.metadata

    await workflow.cancel(reason="customer left")

    stored = await fresh.load_workflow(workflow.id)
    assert stored.status is WorkflowStatus.CANCELLED
    assert "waiting_for" not in stored.metadata
    assert stored.metadata["cancellation_reason"] == "customer left"
