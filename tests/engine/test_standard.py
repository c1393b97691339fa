"""STANDARD steps: merging, re-validation, sync and async functions, keyword arguments,
``automate_next`` chains, ``next:`` and step kinds without a runtime."""

from __future__ import annotations

import pytest

from ruvon import StepNotImplementedError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.models import StepKind
from ruvon.providers.persistence import PersistenceProvider
from ruvon.steps import STEP_RUNNERS
from ruvon.testing import TestHarness
from tests.support.config import ConfigDir, audit_log, audit_types
from tests.support.order_steps import OrderState


async def test_each_result_is_merged_and_committed(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow(
        "Standard", {"order_id": "A1", "amount": 7, "customer": "Ann"}
    )
    assert workflow.status is WorkflowStatus.ACTIVE
    assert workflow.current_step == "Validate"

    # A key that is not a field of the state is returned, but never reaches the state.
    result, next_name = await workflow.next_step()
    assert result == {"visited": ["Validate"], "not_a_field": 42}
    assert next_name == "Charge"
    assert not hasattr(workflow.state, "not_a_field")
    stored = await persistence.load_workflow(workflow.id)
    assert stored is not None
    assert stored.state["visited"] == ["Validate"]
    assert "not_a_field" not in stored.state
    assert stored.current_step == "Charge"
    assert stored.current_step_index == 1

    # An ``async def`` function is awaited.
    result, next_name = await workflow.next_step()
    assert result == {"charged": 7, "visited": ["Validate", "Charge"]}
    assert next_name == "Quiet"

    # ``None`` is an empty result.
    result, next_name = await workflow.next_step()
    assert result == {}
    assert next_name == "Greet"

    loaded = await fresh.load_workflow(workflow.id)
    assert isinstance(loaded.state, OrderState)
    assert loaded.state == workflow.state
    assert loaded.state.charged == 7
    assert loaded.current_step == "Greet"
    assert loaded.status is WorkflowStatus.ACTIVE
    assert loaded.version == workflow.version


async def test_the_last_step_completes_the_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Standard", {"order_id": "A1", "customer": "Ann"})
    assert await workflow.run() is WorkflowStatus.COMPLETED
    assert workflow.current_step is None
    assert workflow.current_step_name is None
    assert workflow.completed_at is not None

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.current_step is None
    assert loaded.completed_at is not None
    assert loaded.state.visited == ["Validate", "Charge"]
    assert loaded.state.greeting == "Hello Ann!"
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        *["STEP_EXECUTED"] * 5,
        "WORKFLOW_COMPLETED",
    ]
    completed = (await audit_log(persistence, workflow.id))[-1]
    assert (completed.old_status, completed.new_status) == ("ACTIVE", "COMPLETED")


async def test_user_input_is_filtered_to_the_declared_parameters(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Standard", {"order_id": "A1", "customer": "Ann"})
    await workflow.jump_to_step("Greet")

    # ``greet(state, context, customer="World", punctuation="!")`` takes only what it declares.
    result, _ = await workflow.next_step({"customer": "Bob", "punctuation": "?", "extra": 1})
    assert result == {"greeting": "Hello Bob?"}

    # ``collect_kwargs(state, context, **kwargs)`` takes everything.
    result, next_name = await workflow.next_step({"b": 2, "a": 1})
    assert result == {"seen_kwargs": ["a", "b"]}
    assert next_name is None

    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.state.greeting == "Hello Bob?"
    assert loaded.state.seen_kwargs == ["a", "b"]
    assert loaded.status is WorkflowStatus.COMPLETED


async def test_declared_parameters_are_bound_from_state_fields(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("Standard", {"order_id": "A1", "customer": "Ann"})
    await workflow.jump_to_step("Greet")
    # ``customer`` comes from the state; ``punctuation`` (no such field) keeps its default.
    result, _ = await workflow.next_step()
    assert result == {"greeting": "Hello Ann!"}


async def test_changes_made_to_the_state_in_place_are_kept(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("InPlace", {"order_id": "A1"})
    result, _ = await workflow.next_step()
    assert result == {}
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.state.note == "changed in place"
    assert loaded.status is WorkflowStatus.COMPLETED


async def test_automate_next_chains_steps_in_one_call(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Chain", {"order_id": "A1"})

    result, next_name = await workflow.next_step()

    # A and B chain on; C has no automate_next, so the call returns C's result before D.
    assert result == {"visited": ["A", "B", "C"]}
    assert next_name == "D"
    assert workflow.status is WorkflowStatus.ACTIVE
    # B was told what A returned.
    assert workflow.state.previous == {"visited": ["A"]}
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.current_step == "D"
    assert loaded.state.visited == ["A", "B", "C"]
    executed = [
        event.step_name
        for event in await audit_log(persistence, workflow.id)
        if event.event_type == "STEP_EXECUTED"
    ]
    assert executed == ["A", "B", "C"]

    result, next_name = await workflow.next_step()
    assert result == {"visited": ["A", "B", "C", "D"]}
    assert next_name is None
    assert (await fresh.load_workflow(workflow.id)).status is WorkflowStatus.COMPLETED


async def test_next_key_names_the_successor_and_end_stops(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("NextKey", {"order_id": "A1"})

    _, next_name = await workflow.next_step()
    assert next_name == "Third"
    assert (await fresh.load_workflow(workflow.id)).current_step == "Third"

    _, next_name = await workflow.next_step()
    assert next_name is None
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["First", "Third"]


def test_every_step_kind_has_a_runner() -> None:
    assert set(STEP_RUNNERS) == set(StepKind)


async def test_a_step_kind_without_runtime_fails_the_workflow(
    builder: WorkflowBuilder,
    fresh: WorkflowBuilder,
    persistence: PersistenceProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file of a newer language version, run by an engine that lacks the kind's runner."""
    monkeypatch.delitem(STEP_RUNNERS, StepKind.FIRE_AND_FORGET)  # type: ignore[attr-defined]
    workflow = await builder.create_workflow("NotImplemented", {"order_id": "A1"})
    await workflow.next_step()

    with pytest.raises(StepNotImplementedError, match=r"'Spawn'.*FIRE_AND_FORGET") as caught:
        await workflow.next_step()

    assert isinstance(caught.value, NotImplementedError)
    assert caught.value.step_name == "Spawn"
    assert caught.value.kind == "FIRE_AND_FORGET"
    assert workflow.status is WorkflowStatus.FAILED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Spawn"
    assert loaded.error_message is not None
    assert "Spawn" in loaded.error_message
    assert loaded.state.visited == ["Start"]
    assert (await audit_types(persistence, workflow.id))[-2:] == ["STEP_FAILED", "WORKFLOW_FAILED"]


async def test_harness_drives_a_workflow_to_completion(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    harness = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    workflow = await harness.start_workflow("Chain", {"order_id": "H1"})

    assert await harness.next_step(workflow.id) == {"visited": ["A", "B", "C"]}
    assert await harness.run(workflow.id) is WorkflowStatus.COMPLETED

    loaded = await harness.load_workflow(workflow.id)
    assert loaded is not workflow
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["A", "B", "C", "D"]
    assert await harness.audit_events(workflow.id) == [
        "WORKFLOW_STARTED",
        *["STEP_EXECUTED"] * 4,
        "WORKFLOW_COMPLETED",
    ]
