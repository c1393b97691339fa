"""Nested sagas (SAGA-06): a child workflow in saga mode compensates its own steps when it
fails, and its parent hears of the failure only once the child's rollback has ended, also when
that rollback was interrupted and finished later."""

from __future__ import annotations

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import WorkflowStateError
from ruvon.providers.persistence import PersistenceProvider
from tests.engine.test_saga_durable import Store, _calls, _compensating
from tests.support.config import ConfigDir, workflow

STEPS = "tests.support.saga_steps"


@pytest.fixture
def nested(config: ConfigDir) -> ConfigDir:
    config.write(
        "TripLegs",
        workflow(
            "TripLegs",
            f"""
            - name: Hotel
              function: {STEPS}.book_hotel
              compensate_function: {STEPS}.cancel_hotel
              automate_next: true
            - name: Car
              function: {STEPS}.book_car
              compensate_function: {STEPS}.cancel_car
              automate_next: true
            - name: Pay
              function: {STEPS}.take_payment
            """,
            header="saga_enabled: true",
            state_model=f"{STEPS}.Trip",
        ),
    )
    config.write(
        "TripPlan",
        workflow(
            "TripPlan",
            f"""
            - name: Flight
              function: {STEPS}.book_flight
              compensate_function: {STEPS}.cancel_flight
              automate_next: true
            - name: Legs
              type: SUB_WORKFLOW
              target_workflow_type: TripLegs
              initial_data_template:
                trip_id: "{{{{ state.trip_id }}}}-legs"
            """,
            header="saga_enabled: true",
            state_model=f"{STEPS}.Trip",
        ),
    )
    return config


async def test_the_child_compensates_itself_before_its_parent_fails(
    nested: ConfigDir, persistence: PersistenceProvider
) -> None:
    plan = await nested.builder(persistence).create_workflow("TripPlan", {"trip_id": "N1"})

    await plan.next_step()  # Flight, then Legs runs the child, whose payment fails

    child_id = plan.metadata["failed_child_id"]
    child = await nested.builder(persistence).load_workflow(child_id)
    assert child.status is WorkflowStatus.FAILED_ROLLED_BACK
    assert child.state.cancelled == ["car", "hotel"]
    log = await persistence.get_compensation_log(child_id)
    assert [e.step_name for e in log] == ["Car", "Hotel"]
    assert plan.status is WorkflowStatus.FAILED_CHILD_WORKFLOW
    assert plan.metadata["failed_child_status"] == "FAILED_ROLLED_BACK"
    assert _calls(child_id) == {"cancel_car": 1, "cancel_hotel": 1}
    # Then the parent undoes its own steps (SAGA-06), after the child's rollback ended.
    assert plan.state.cancelled == ["flight"]
    parent_log = await persistence.get_compensation_log(plan.id)
    assert [e.step_name for e in parent_log] == ["Flight"]
    assert _calls(plan.id) == {"cancel_flight": 1}
    with pytest.raises(WorkflowStateError, match="compensated"):
        await plan.retry()  # its steps were undone: the run is final


async def test_a_child_rollback_finished_later_fails_the_parent_then(
    nested: ConfigDir, persistence: PersistenceProvider
) -> None:
    store = Store(persistence)
    plan = await nested.builder(store).create_workflow("TripPlan", {"trip_id": "N2"})
    store.fail = _compensating("Hotel")  # the child's rollback is interrupted

    await plan.next_step()  # the child's failure is the child's: the parent's call returns

    parent = await nested.builder(persistence).load_workflow(plan.id)
    assert parent.status is WorkflowStatus.PENDING_SUB_WORKFLOW  # still waiting for the child
    child = await nested.builder(persistence).load_workflow(str(parent.blocked_on_child_id))
    assert child.rolling_back

    store.fail = lambda commit: False
    assert await child.resume_rollback() is WorkflowStatus.FAILED_ROLLED_BACK

    parent = await nested.builder(persistence).load_workflow(plan.id)
    assert parent.status is WorkflowStatus.FAILED_CHILD_WORKFLOW
    assert parent.metadata["failed_child_status"] == "FAILED_ROLLED_BACK"
    assert _calls(child.id) == {"cancel_car": 1, "cancel_hotel": 2}
