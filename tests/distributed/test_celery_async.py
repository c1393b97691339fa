"""ASYNC steps on real Celery workers: the caller is free at once, the workers run the
functions, report through the engine and go on with the chained steps; routing by queue;
a duplicated message never runs a function twice; a worker SIGKILLed mid-step is replaced by
another one and nothing committed runs again."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from ruvon.builder import WorkflowBuilder
from ruvon.implementations.execution.celery import RUN_STEP_TASK
from ruvon.models import WorkflowStatus

from .conftest import CONTROL, Deployment, eventually

STEPS = ("Validate", "Charge", "Ship", "Notify", "Finish")


async def _completed(builder: WorkflowBuilder, workflow_id: str) -> bool:
    record = await builder.persistence_provider.load_workflow(workflow_id)  # type: ignore[union-attr]
    return record is not None and record.status == "COMPLETED"


async def _state(builder: WorkflowBuilder, workflow_id: str) -> dict[str, Any]:
    record = await builder.persistence_provider.load_workflow(workflow_id)  # type: ignore[union-attr]
    assert record is not None
    return dict(record.state)


def _counts(deployment: Deployment, workflow_id: str) -> Counter[str]:
    return Counter(run["step"] for run in deployment.runs() if run["workflow_id"] == workflow_id)


def _send_again(workflow_id: str, step_index: int, step_name: str, token: str, queue: str) -> None:
    """Deliver a dispatch's message once more, as a broker redelivery would."""
    kwargs = {
        "workflow_id": workflow_id,
        "step_index": step_index,
        "step_name": step_name,
        "token": token,
        "user_input": {},
    }
    CONTROL.send_task(RUN_STEP_TASK, kwargs=kwargs, queue=queue)


async def test_async_steps_run_on_workers_and_the_run_completes(deployment: Deployment) -> None:
    main = deployment.start_worker(deployment.queue)
    notifier = deployment.start_worker(deployment.notify_queue)
    async with deployment.builder() as builder:
        workflow = await builder.start_workflow("AsyncOrder", {"order_id": "A-1", "amount": 100.0})
        # Validate ran here; Charge was sent away: the caller is free at once.
        assert workflow.status is WorkflowStatus.PENDING_ASYNC
        assert workflow.current_step_name == "Charge"

        await eventually(lambda: _completed(builder, workflow.id), what="the run to complete")
        state = await _state(builder, workflow.id)
    assert state["charged_amount"] == 110.0
    assert state["shipped"] and state["notified"] and state["done"]

    assert _counts(deployment, workflow.id) == Counter(STEPS)
    pids = {run["step"]: run["pid"] for run in deployment.runs()}
    assert pids["Validate"] == os.getpid()
    # Charge and the chained Ship (an ASYNC step the worker sent to the default queue,
    # RUVON_CELERY_QUEUE) ran on the main queue's worker; Notify went to its own
    # queue (`queue:` in the YAML), and the worker there went on with Finish.
    assert pids["Charge"] == pids["Ship"] == main.process.pid
    assert pids["Notify"] == pids["Finish"] == notifier.process.pid


async def test_a_duplicated_message_never_runs_the_function_again(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.start_worker()
    async with deployment.builder() as builder:
        # A copy delivered while the first delivery runs the function (on the other worker).
        slow = await builder.start_workflow(
            "AsyncOrder", {"order_id": "D-1", "amount": 10.0, "work_seconds": 1.5}
        )
        token = slow.progress.dispatch["Charge"]
        _send_again(slow.id, 1, "Charge", token, deployment.queue)
        _send_again(slow.id, 1, "Charge", token, deployment.queue)
        await eventually(lambda: _completed(builder, slow.id), what="the slow run to complete")

        # Copies delivered after the step was applied.
        _send_again(slow.id, 1, "Charge", token, deployment.queue)
        _send_again(slow.id, 3, "Notify", "not-the-token", deployment.notify_queue)
        # A marker run: once it completed, the copies sent before it have been handled
        # (one queue, taken in order by the two workers).
        marker = await builder.start_workflow("AsyncOrder", {"order_id": "D-2", "amount": 1.0})
        await eventually(lambda: _completed(builder, marker.id), what="the marker run")

    assert _counts(deployment, slow.id) == Counter(STEPS)
    assert [s["step"] for s in deployment.starts() if s["order_id"] == "D-1"].count("Charge") == 1
    assert _counts(deployment, marker.id) == Counter(STEPS)


async def test_a_worker_killed_mid_step_is_replaced(deployment: Deployment) -> None:
    first = deployment.start_worker()
    second = deployment.start_worker()
    async with deployment.builder() as builder:
        workflow = await builder.start_workflow(
            "AsyncOrder", {"order_id": "K-1", "amount": 50.0, "work_seconds": 3.0}
        )

        def charging() -> int | None:
            pids = [s["pid"] for s in deployment.starts() if s["step"] == "Charge"]
            return pids[0] if pids else None

        running = await eventually(charging, what="Charge to start on a worker")
        victim, survivor = (first, second) if running == first.process.pid else (second, first)
        assert running == victim.process.pid
        victim.kill()

        await eventually(
            lambda: _completed(builder, workflow.id), timeout=90, what="the run to complete"
        )
        state = await _state(builder, workflow.id)
    assert state["charged_amount"] == 55.0 and state["done"]
    # Charge started twice (the killed run left no result) and completed once, on the
    # survivor; what was committed before the kill (Validate) never ran again.
    charge_starts = [s["pid"] for s in deployment.starts() if s["step"] == "Charge"]
    assert charge_starts == [victim.process.pid, survivor.process.pid]
    assert _counts(deployment, workflow.id) == Counter(STEPS)
    assert {r["pid"] for r in deployment.runs() if r["step"] == "Charge"} == {survivor.process.pid}


def _ruvon_worker(deployment: Deployment) -> tuple[subprocess.Popen[bytes], Path]:
    """``ruvon worker --celery`` on the deployment's database (named by --db) and queues."""
    env = {**deployment.env(), "RUVON_DATABASE_URL": ""}
    log = deployment.root / "ruvon-worker.log"
    queues = f"{deployment.queue},{deployment.notify_queue}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["ruvon", "worker", "--celery", "--db", deployment.database_url, "-Q", queues,
             "--concurrency", "1"],
            cwd=deployment.root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, log


async def test_ruvon_worker_celery_starts_the_same_worker(deployment: Deployment) -> None:
    process, log = _ruvon_worker(deployment)
    try:
        async with deployment.builder() as builder:
            workflow = await builder.start_workflow("AsyncOrder", {"order_id": "R-1"})
            await eventually(
                lambda: _completed(builder, workflow.id), timeout=90, what=log.read_text()
            )
    finally:
        process.terminate()  # Celery's warm shutdown
        assert process.wait(timeout=30) == 0, log.read_text()
    assert _counts(deployment, workflow.id) == Counter(STEPS)


async def test_a_worker_starts_and_finishes_a_sub_workflow(deployment: Deployment) -> None:
    deployment.start_worker()
    async with deployment.builder() as builder:
        parent = await builder.start_workflow("ParentOrder", {"order_id": "C-1", "amount": 10.0})
        assert parent.status is WorkflowStatus.PENDING_ASYNC
        # The worker charges, starts the child (whose ASYNC steps go through the broker
        # again), and the child's completion resumes the parent: Finish runs, in a worker.
        await eventually(lambda: _completed(builder, parent.id), what="the parent to complete")
        children = await builder.list_workflows(parent_workflow_id=parent.id)
        assert [(child.workflow_type, child.status) for child in children] == [
            ("AsyncOrder", "COMPLETED")
        ]
        child_state = await _state(builder, children[0].id)
    assert child_state["order_id"] == "C-1-child"
    assert child_state["charged_amount"] == 12.1  # 11.0 from the parent, charged again
    assert _counts(deployment, parent.id) == Counter(["Validate", "Charge", "Finish"])
    assert _counts(deployment, children[0].id) == Counter(STEPS)
