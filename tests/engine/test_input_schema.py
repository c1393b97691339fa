"""``Workflow.input_schema``: the JSON Schema of a step's ``input_model``, what a form or the
CLI's interactive mode asks a person for."""

from __future__ import annotations

import pytest

from ruvon import JumpTargetError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from tests.support.order_steps import ApprovalInput

APPROVAL = {"approved": True, "approver": "Ann"}


async def test_the_waiting_step_gives_its_input_models_schema(
    builder: WorkflowBuilder, fresh: WorkflowBuilder
) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "S1"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.WAITING_HUMAN

    schema = workflow.input_schema()

    assert schema == ApprovalInput.model_json_schema()
    assert schema is not None
    assert set(schema["properties"]) == {"approved", "approver"}
    assert schema["properties"]["approved"]["type"] == "boolean"
    assert sorted(schema["required"]) == ["approved", "approver"]
    # A workflow loaded elsewhere (from its definition snapshot) gives the same schema.
    loaded = await fresh.load_workflow(workflow.id)
    assert loaded.input_schema() == schema


async def test_a_named_step_and_steps_without_an_input_model(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "S2"})

    assert workflow.current_step == "Prepare"
    assert workflow.input_schema() is None  # the current step takes no input model
    assert workflow.input_schema("Approve") == ApprovalInput.model_json_schema()
    assert workflow.input_schema("Ship") is None


async def test_an_ended_workflow_has_no_current_input(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("ApprovalFirst", {"order_id": "S3"})
    await workflow.next_step()
    await workflow.next_step(APPROVAL)
    assert workflow.status is WorkflowStatus.COMPLETED

    assert workflow.input_schema() is None
    assert workflow.input_schema("Approve") == ApprovalInput.model_json_schema()


async def test_an_unknown_step_name_is_an_error(builder: WorkflowBuilder) -> None:
    workflow = await builder.create_workflow("ApprovalFirst", {"order_id": "S4"})

    with pytest.raises(JumpTargetError, match="Nowhere"):
        workflow.input_schema("Nowhere")
