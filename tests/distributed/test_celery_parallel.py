"""PARALLEL tasks on real Celery workers: one message per task, spread over the worker
processes (their runs overlap in time), merged once by the report that completes the set."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ruvon.builder import WorkflowBuilder
from ruvon.models import WorkflowStatus

from .conftest import Deployment, eventually

TASKS = ("Pick", "Wrap", "Label", "Weigh")


async def _final(builder: WorkflowBuilder, workflow_id: str) -> dict[str, Any] | None:
    record = await builder.persistence_provider.load_workflow(workflow_id)  # type: ignore[union-attr]
    assert record is not None
    return dict(record.state) if record.status == "COMPLETED" else None


async def test_parallel_tasks_spread_over_two_workers_and_merge_once(
    deployment: Deployment,
) -> None:
    first = deployment.start_worker()
    second = deployment.start_worker()
    async with deployment.builder() as builder:
        workflow = await builder.start_workflow(
            "ParallelOrder", {"order_id": "P-1", "work_seconds": 1.0}
        )
        # Validate ran here, the four tasks were sent: the caller is free at once.
        assert workflow.status is WorkflowStatus.PENDING_ASYNC
        state = await eventually(lambda: _final(builder, workflow.id), what="the run")
        audit = await builder.persistence_provider.get_audit_log(workflow.id)  # type: ignore[union-attr]

    assert state["parts"] == {name: len(name) for name in TASKS}
    assert state["validated"] and state["done"]
    runs = [run for run in deployment.runs() if run["workflow_id"] == workflow.id]
    assert Counter(run["step"] for run in runs) == Counter(["Validate", *TASKS, "Finish"])
    tasks = [run for run in runs if run["step"] in TASKS]
    # Both worker processes ran tasks, and runs on the two overlapped in time (recorded
    # intervals on the wall clock, not the total time alone).
    assert {run["pid"] for run in tasks} == {first.process.pid, second.process.pid}
    overlapping = [
        (a["step"], b["step"])
        for a in tasks
        for b in tasks
        if a["pid"] != b["pid"] and a["start"] < b["end"] and b["start"] < a["end"]
    ]
    assert overlapping, tasks
    # One merge: the step was executed once, after the four reports.
    kinds = [event.event_type for event in audit]
    assert kinds.count("STEP_EXECUTED") == 3  # Validate, Pack, Finish
    assert kinds.count("STEP_DISPATCHED") == 4
