"""``TestHarness.override_step``: a step's function replaced for one harness only."""

from __future__ import annotations

from typing import Any

from ruvon import StepContext, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from ruvon.testing import TestHarness
from tests.support.config import ConfigDir
from tests.support.order_steps import OrderState


def fake_charge(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"charged": 999, "visited": [*state.visited, "fake"]}


async def test_an_override_stays_in_its_harness(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    patched = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    plain = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    patched.override_step("Charge", fake_charge, workflow_type="Standard")

    faked = await patched.start_workflow("Standard", {"order_id": "O1", "amount": 7})
    real = await plain.start_workflow("Standard", {"order_id": "O2", "amount": 7})
    await patched.run(faked.id)
    await plain.run(real.id)

    faked_state = (await patched.load_workflow(faked.id)).state
    real_state = (await plain.load_workflow(real.id)).state
    assert faked_state.charged == 999
    assert "fake" in faked_state.visited
    assert real_state.charged != 999
    assert "fake" not in real_state.visited
    # A third harness made afterwards runs the real function too.
    later = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    again = await later.start_workflow("Standard", {"order_id": "O3", "amount": 7})
    assert await later.run(again.id) is WorkflowStatus.COMPLETED
    assert (await later.load_workflow(again.id)).state.charged != 999


async def test_an_override_applies_to_workflows_loaded_after_it(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    harness = TestHarness(workflow_registry=config.registry_path, persistence=persistence)
    workflow_ = await harness.start_workflow("Standard", {"order_id": "O4", "amount": 7})
    await harness.next_step(workflow_.id)  # Validate, with the real function

    harness.override_step("Charge", fake_charge)
    await harness.run(workflow_.id)

    assert (await harness.load_workflow(workflow_.id)).state.charged == 999
