"""Waiting for people: HUMAN_IN_LOOP steps, WorkflowPauseDirective, and input_model checks
that reject bad input without touching the stored workflow."""

from __future__ import annotations

import pathlib

import pytest

from ruvon import InvalidInputError, WorkflowStateError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from ruvon.testing import TestHarness
from tests.support.config import ConfigDir, audit_log, audit_types

APPROVAL = {"approved": True, "approver": "Ann"}

# -- HUMAN_IN_LOOP --------------------------------------------------------------------------


async def test_empty_input_pauses_in_waiting_human(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("ApprovalFirst", {"order_id": "H1"})

    result, next_name = await workflow.next_step()

    assert result == {}
    assert next_name == "Approve"  # the same step: it has not run yet
    assert workflow.status is WorkflowStatus.WAITING_HUMAN
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.WAITING_HUMAN
    assert loaded.current_step == "Approve"
    assert loaded.metadata["waiting_for"] == "Approve"
    assert loaded.state.approved is None
    paused = (await audit_log(persistence, workflow.id))[-1]
    assert paused.event_type == "WORKFLOW_PAUSED"
    assert (paused.old_status, paused.new_status) == ("ACTIVE", "WAITING_HUMAN")
    # A step that only waited is not an executed step.
    assert "STEP_EXECUTED" not in await audit_types(persistence, workflow.id)


async def test_resuming_validates_the_input_and_runs_the_step(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("ApprovalFirst", {"order_id": "H1"})
    await workflow.next_step()

    # A fresh instance (another request, another process) resumes it.
    waiting = await fresh.load_workflow(workflow.id)
    result, next_name = await waiting.next_step(APPROVAL)

    # The function got the input as keywords and the validated model in its context; the
    # step's automate_next ran Ship in the same call.
    assert result == {"visited": ["Approve", "Ship"]}
    assert next_name is None
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.approved is True
    assert loaded.state.approver == "Ann"
    assert loaded.state.input_type == "ApprovalInput"
    assert "waiting_for" not in loaded.metadata
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        "WORKFLOW_PAUSED",
        "WORKFLOW_RESUMED",
        "STEP_EXECUTED",
        "STEP_EXECUTED",
        "WORKFLOW_COMPLETED",
    ]
    resumed = (await audit_log(persistence, workflow.id))[2]
    assert (resumed.old_status, resumed.new_status) == ("WAITING_HUMAN", "ACTIVE")
    assert resumed.data == {"input_keys": ["approved", "approver"]}


async def test_input_on_the_first_call_runs_the_step_at_once(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("ApprovalFirst", {"order_id": "H1"})

    result, next_name = await workflow.next_step(APPROVAL)

    assert result == {"visited": ["Approve", "Ship"]}
    assert next_name is None
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.input_type == "ApprovalInput"
    assert "WORKFLOW_PAUSED" not in await audit_types(persistence, workflow.id)


async def test_a_human_step_reached_by_automate_next_always_waits(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "H1"})

    # The input is meant for Prepare; it must not answer the approval that follows.
    result, next_name = await workflow.next_step(APPROVAL)

    # The result is the last step that ran (Prepare), not the one that only started waiting.
    assert result == {"visited": ["Prepare"]}
    assert next_name == "Approve"
    assert workflow.status is WorkflowStatus.WAITING_HUMAN
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.WAITING_HUMAN
    assert loaded.state.visited == ["Prepare"]
    assert loaded.state.approved is None

    result, next_name = await workflow.next_step(APPROVAL)
    assert result["approved"] is True
    assert next_name == "Ship"
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.ACTIVE
    assert loaded.state.visited == ["Prepare", "Approve"]


async def test_a_human_step_without_function_merges_the_input(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Review", {"order_id": "H1"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.WAITING_HUMAN

    result, next_name = await workflow.next_step(
        {"reviewer": "Zoe", "note": "fine", "not_a_field": 1}
    )

    assert result == {"reviewer": "Zoe", "note": "fine", "not_a_field": 1}
    assert next_name is None  # ``next: END``
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert (loaded.state.reviewer, loaded.state.note) == ("Zoe", "fine")
    assert loaded.state.visited == []  # "Never" never ran


async def test_harness_resumes_a_waiting_workflow(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    harness = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    workflow = await harness.start_workflow("Approval", {"order_id": "H2"})

    assert await harness.run(workflow.id) is WorkflowStatus.WAITING_HUMAN
    assert (await harness.load_workflow(workflow.id)).current_step == "Approve"
    assert await harness.run(workflow.id, APPROVAL) is WorkflowStatus.COMPLETED

    loaded = await harness.load_workflow(workflow.id)
    assert loaded.state.visited == ["Prepare", "Approve", "Ship"]
    assert (await harness.audit_events(workflow.id)).count("STEP_EXECUTED") == 3


# -- WorkflowPauseDirective -----------------------------------------------------------------


async def test_pause_directive_merges_its_result_and_waits(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Pause", {"order_id": "P1"})

    result, next_name = await workflow.next_step()

    assert result == {"review_requested": True, "visited": ["Submit"]}
    # The paused step counts as done: the next call runs the step after it.
    assert next_name == "Review"
    assert workflow.status is WorkflowStatus.PAUSED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.PAUSED
    assert loaded.current_step == "Review"
    assert loaded.metadata["waiting_for"] == "review"
    assert loaded.state.review_requested is True
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        "STEP_EXECUTED",
        "WORKFLOW_PAUSED",
    ]


async def test_resuming_a_pause_runs_the_next_step_with_the_input(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Pause", {"order_id": "P1"})
    await workflow.next_step()

    paused = await fresh.load_workflow(workflow.id)
    result, next_name = await paused.resume(input={"reviewer": "Zoe"})

    assert result == {"visited": ["Submit", "Review", "Done"]}
    assert next_name is None
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.reviewer == "Zoe"
    assert "waiting_for" not in loaded.metadata
    resumed = [
        e for e in await audit_log(persistence, workflow.id) if e.event_type == "WORKFLOW_RESUMED"
    ]
    assert [(e.step_name, e.old_status, e.new_status) for e in resumed] == [
        ("Review", "PAUSED", "ACTIVE")
    ]


async def test_resuming_a_pause_in_the_last_step_completes(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("PauseLast", {"order_id": "P1"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.PAUSED
    assert workflow.current_step is None

    result, next_name = await workflow.next_step({"anything": 1})

    assert (result, next_name) == ({}, None)
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.review_requested is True


async def test_a_step_failing_on_resume_ends_the_wait_first(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("PauseThenFail", {"order_id": "P2"})
    await workflow.next_step()

    with pytest.raises(RuntimeError, match="card declined"):
        await workflow.next_step({"reviewer": "Zoe"})

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Explode"
    assert "waiting_for" not in loaded.metadata
    # PAUSED -> ACTIVE -> FAILED: each change is one the transition table allows.
    changes = [
        (e.event_type, e.old_status, e.new_status)
        for e in await audit_log(persistence, workflow.id)
        if e.old_status is not None
    ]
    assert changes == [
        ("WORKFLOW_PAUSED", "ACTIVE", "PAUSED"),
        ("WORKFLOW_RESUMED", "PAUSED", "ACTIVE"),
        ("WORKFLOW_FAILED", "ACTIVE", "FAILED"),
    ]


async def test_resume_refuses_a_workflow_that_is_not_waiting(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("Pause", {"order_id": "P1"})
    with pytest.raises(WorkflowStateError, match="ACTIVE"):
        await workflow.resume({"reviewer": "Zoe"})


# -- input_model rejection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workflow_type", "bad_input", "step", "field"),
    [
        ("ApprovalFirst", {"approved": True, "approver": ""}, "Approve", "approver"),
        ("ApprovalFirst", {"approver": "Ann"}, "Approve", "approved"),
        ("Pause", {"reviewer": ""}, "Review", "reviewer"),
    ],
)
async def test_invalid_input_changes_nothing(
    builder: WorkflowBuilder,
    fresh: WorkflowBuilder,
    persistence: PersistenceProvider,
    workflow_type: str,
    bad_input: dict[str, object],
    step: str,
    field: str,
) -> None:
    workflow = await builder.create_workflow(workflow_type, {"order_id": "I1"})
    await workflow.next_step()  # now waiting (WAITING_HUMAN or PAUSED)
    before = await persistence.load_workflow(workflow.id)
    assert before is not None
    audit_before = await audit_log(persistence, workflow.id)

    with pytest.raises(InvalidInputError) as caught:
        await workflow.next_step(bad_input)

    error = caught.value
    assert isinstance(error, ValueError)
    assert error.step_name == step
    assert f"'{step}'" in str(error)
    assert field in str(error)
    # The same reasons, field by field, for a form to show next to each field.
    assert error.errors, error
    assert all(set(entry) == {"field", "message", "type"} for entry in error.errors)
    assert field in [entry["field"].split(".")[0] for entry in error.errors]
    after = await persistence.load_workflow(workflow.id)
    assert after is not None
    assert (after.status, after.state, after.version) == (
        before.status,
        before.state,
        before.version,
    )
    assert after.current_step == step
    assert await audit_log(persistence, workflow.id) == audit_before
    assert workflow.status.value == before.status
    assert workflow.version == before.version

    # The same workflow object still accepts valid input afterwards.
    good = APPROVAL if step == "Approve" else {"reviewer": "Zoe"}
    await workflow.next_step(good)
    assert (await fresh.load_workflow(workflow.id)).status is WorkflowStatus.COMPLETED


async def test_required_input_is_enforced_without_an_input_model(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Required", {"order_id": "I2", "customer": "Ann"})
    before = await persistence.load_workflow(workflow.id)

    # ``customer`` is a state field too, but required_input asks the caller for it.
    with pytest.raises(
        InvalidInputError, match=r"'Greet'.*missing required input \['customer'\]"
    ) as caught:
        await workflow.next_step({"punctuation": "?"})
    assert caught.value.errors == [
        {"field": "customer", "message": "Field required", "type": "missing"}
    ]

    assert await persistence.load_workflow(workflow.id) == before
    result, _ = await workflow.next_step({"customer": "Bob"})
    assert result == {"greeting": "Hello Bob!"}
    assert (await fresh.load_workflow(workflow.id)).status is WorkflowStatus.COMPLETED


async def test_a_pause_directive_resumes_where_next_leads(tmp_path: pathlib.Path) -> None:
    """A paused step is done: resuming follows its ``next:`` (here END), not the file order."""
    from ruvon import WorkflowBuilder
    from ruvon.implementations.persistence.memory import MemoryPersistenceProvider

    (tmp_path / "registry.yaml").write_text(
        "workflows:\n  - type: PauseEnd\n    config_file: pause_end.yaml\n"
        "    initial_state_model: builtins.dict\n"
    )
    (tmp_path / "pause_end.yaml").write_text(
        "workflow_type: PauseEnd\nsteps:\n"
        "  - name: Ask\n    function: tests.support.order_steps.pause_here\n    next: END\n"
        "  - name: Never\n    function: tests.support.order_steps.must_not_run\n"
    )
    builder = WorkflowBuilder(
        tmp_path / "registry.yaml", persistence_provider=MemoryPersistenceProvider()
    )
    wf = await builder.create_workflow("PauseEnd", {})
    await wf.next_step()
    assert wf.status == "PAUSED"
    await wf.next_step({"answer": 42})
    assert wf.status == "COMPLETED"
    assert wf.state == {"asked": True}
