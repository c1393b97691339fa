"""DECISION steps: first matching route, default, the ``next_step`` alias, bare field names,
no match, and a function that jumps."""

from __future__ import annotations

import pytest

from ruvon import NoRouteMatchedError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import audit_log, audit_types


@pytest.mark.parametrize(
    ("amount", "branch", "skipped"),
    [
        # score = 2 * amount. 80 matches both conditions: the first route wins.
        (80, "Big", []),
        # Only ``state.amount > 10`` holds: the route written with ``next_step:``.
        (20, "Medium", ["Big"]),
        (1, "Small", ["Big", "Medium"]),
    ],
)
async def test_routes_choose_the_first_match_or_the_default(
    builder: WorkflowBuilder,
    fresh: WorkflowBuilder,
    persistence: PersistenceProvider,
    amount: int,
    branch: str,
    skipped: list[str],
) -> None:
    workflow = await builder.create_workflow("Decide", {"order_id": "D1", "amount": amount})

    result, next_name = await workflow.next_step()

    # The function's result is merged before the routes are evaluated (``score`` is read).
    assert result == {"score": amount * 2, "visited": ["Score"]}
    assert next_name == branch
    assert workflow.status is WorkflowStatus.ACTIVE
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.current_step == branch
    assert loaded.state.score == amount * 2
    assert loaded.metadata.get("skipped_steps", []) == skipped
    executed = [e for e in await audit_log(persistence, workflow.id) if e.step_name == "Score"]
    assert [e.event_type for e in executed] == ["STEP_EXECUTED"]
    assert executed[0].data is not None
    assert executed[0].data["jumped_to"] == branch

    # Every branch ends the workflow (``next: END`` or the last step).
    assert await workflow.run() is WorkflowStatus.COMPLETED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.visited == ["Score", branch]


async def test_no_matching_route_fails_the_workflow(
    builder: WorkflowBuilder, fresh: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("DecideStrict", {"order_id": "D1", "amount": 5})

    with pytest.raises(NoRouteMatchedError, match="'Check'") as caught:
        await workflow.next_step()

    assert isinstance(caught.value, ValueError)
    assert caught.value.step_name == "Check"  # type: ignore[attr-defined]
    assert caught.value.workflow_status == "FAILED"  # type: ignore[attr-defined]
    assert workflow.status is WorkflowStatus.FAILED
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Check"
    assert loaded.error_message is not None
    assert loaded.error_message.startswith("NoRouteMatchedError")
    assert await audit_types(persistence, workflow.id) == [
        "WORKFLOW_STARTED",
        "STEP_FAILED",
        "WORKFLOW_FAILED",
    ]


async def test_a_matching_route_without_function(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("DecideStrict", {"order_id": "D1", "amount": 5000})

    result, next_name = await workflow.next_step()

    assert result == {}
    assert next_name == "Manual"
    assert (await fresh.load_workflow(workflow.id)).current_step == "Manual"


async def test_a_decision_function_may_jump_itself(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("DecideByJump", {"order_id": "D1"})

    result, next_name = await workflow.next_step()

    # The directive's result is merged before the jump.
    assert result == {"note": "jumped", "visited": ["Route"]}
    assert next_name == "Finish"
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.state.note == "jumped"
    assert loaded.current_step == "Finish"
    assert loaded.metadata["skipped_steps"] == ["Middle"]
    await workflow.next_step()
    assert (await fresh.load_workflow(workflow.id)).state.visited == ["Route", "Finish"]
