"""What each step leaves in the store besides the workflow row: STEP_EXECUTED entries with the
step's result, one ``step_duration_ms`` metric per executed step, and execution logs."""

from __future__ import annotations

import pytest

from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import audit_log


async def test_each_executed_step_is_audited_with_its_result(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Standard", {"order_id": "A1", "amount": 4})
    results = []
    for step_input in ({}, {}, {}, {"customer": "Bob"}, {"k": 1}):
        result, _ = await workflow.next_step(step_input)
        results.append(result)

    executed = [
        e for e in await audit_log(persistence, workflow.id) if e.event_type == "STEP_EXECUTED"
    ]
    assert [e.step_name for e in executed] == ["Validate", "Charge", "Quiet", "Greet", "Collect"]
    assert [e.data["result"] for e in executed if e.data] == results
    for event in executed:
        assert event.workflow_id == workflow.id
        assert event.timestamp is not None
        assert event.duration_ms is not None
        assert event.duration_ms >= 0
        assert event.data is not None
        assert event.data["duration_ms"] == pytest.approx(event.duration_ms, abs=0.001)
    ids = [e.id for e in await audit_log(persistence, workflow.id)]
    assert ids == sorted(ids)
    only_executed = await persistence.get_audit_log(workflow.id, event_type="STEP_EXECUTED")
    assert [e.step_name for e in only_executed] == [e.step_name for e in executed]


async def test_one_duration_metric_per_executed_step(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    workflow = await builder.create_workflow("Approval", {"order_id": "A2"})
    await workflow.next_step()  # Prepare runs, Approve only waits: no metric for it
    await workflow.next_step({"approved": True, "approver": "Ann"})
    await workflow.next_step()

    metrics = await persistence.get_workflow_metrics(
        workflow_id=workflow.id, metric_name="step_duration_ms"
    )

    assert [m.step_name for m in metrics] == ["Prepare", "Approve", "Ship"]
    for metric in metrics:
        assert metric.unit == "ms"
        assert metric.metric_value >= 0
        assert metric.workflow_id == workflow.id
        assert metric.workflow_type == "Approval"
    by_type = await persistence.get_workflow_metrics(workflow_type="Approval")
    assert [m.step_name for m in by_type] == ["Prepare", "Approve", "Ship"]


async def test_paused_and_failed_steps(
    builder: WorkflowBuilder, persistence: PersistenceProvider
) -> None:
    paused = await builder.create_workflow("Pause", {"order_id": "A3"})
    await paused.next_step()
    # The step that raised WorkflowPauseDirective completed: it is measured.
    metrics = await persistence.get_workflow_metrics(workflow_id=paused.id)
    assert [m.step_name for m in metrics] == ["Submit"]

    failing = await builder.create_workflow("Fragile", {"order_id": "A4"})
    await failing.next_step()
    with pytest.raises(RuntimeError):
        await failing.next_step()
    # A failed step is not an executed step; it leaves an ERROR log line instead.
    metrics = await persistence.get_workflow_metrics(workflow_id=failing.id)
    assert [m.step_name for m in metrics] == ["Start"]
    logs = await persistence.get_execution_logs(failing.id)
    assert [(log.level, log.step_name) for log in logs] == [
        ("INFO", "Start"),
        ("INFO", "Explode"),
        ("ERROR", "Explode"),
    ]
    assert logs[0].message.startswith("Starting step: Start (completed in ")
    assert logs[1].message == "Starting step: Explode (failed)"
    assert logs[2].message.startswith("Step failed: RuntimeError")
    # The per-step lines are read from the audit entries of the step commits.
    assert logs[0].metadata == {
        "audit_id": logs[0].metadata["audit_id"],
        "event_type": "STEP_EXECUTED",
    }
    paused_logs = await persistence.get_execution_logs(paused.id)
    assert [log.message.split(" (")[0] for log in paused_logs] == [
        "Starting step: Submit",
        "Workflow waits",
    ]
    assert paused_logs[1].message.endswith(f"({paused.status.value}) at step Submit")
