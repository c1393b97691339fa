"""Fixtures of the crash-recovery tests: workflows whose steps count their calls, a builder on
the store under test (every backend, through ``store``), and helpers that leave runs the way a
dead worker leaves them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ruvon import Workflow, WorkflowBuilder
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.providers.execution import AsyncTask, TaskDispatched
from ruvon.providers.persistence import PersistenceProvider
from tests.recovery import steps
from tests.support.config import STEPS, ConfigDir, workflow

R = "tests.recovery.steps"

WORKFLOWS = {
    # The caller runs Prepare; Charge (with the chain after it) is the step a worker dies in.
    "Order": f"""
        - name: Prepare
          function: {R}.count
        - name: Charge
          function: {R}.dies
          automate_next: true
        - name: Ship
          function: {R}.count
        """,
    # One call runs the whole chain; Charge may "kill the process" in the middle of it.
    "Chain": f"""
        - name: Prepare
          function: {R}.count
          automate_next: true
        - name: Charge
          function: {R}.dies
          automate_next: true
        - name: Ship
          function: {R}.count
        """,
    # Driven step by step by its caller: nothing here is automatic.
    "Manual": f"""
        - name: First
          function: {R}.count
        - name: Second
          function: {R}.count
        """,
    "Gated": f"""
        - name: Prepare
          function: {R}.count
        - name: Slow
          function: {R}.gated
          automate_next: true
        - name: Ship
          function: {R}.count
        """,
    # Its Charge fails once; the retry waits (parked, with a builder that parks every backoff).
    "Retrying": f"""
        - name: Prepare
          function: {R}.count
          automate_next: true
        - name: Charge
          function: {R}.fails_first
          retry_policy:
            max_attempts: 2
            delay_seconds: 0
          automate_next: true
        - name: Ship
          function: {R}.count
        """,
    "Remote": f"""
        - name: Prepare
          function: {R}.count
          automate_next: true
        - name: Score
          type: ASYNC
          function: {R}.count
          automate_next: true
        - name: Finish
          function: {R}.count
        """,
    # A child whose first attempt at Charge dies (with the process running its parent).
    "Child": f"""
        - name: Prepare
          function: {R}.count
          automate_next: true
        - name: Charge
          function: {R}.dies_first
          automate_next: true
        - name: Ship
          function: {R}.count
        """,
    "Parent": f"""
        - name: Open
          function: {R}.count
          automate_next: true
        - name: Delegate
          type: SUB_WORKFLOW
          target_workflow_type: Child
          initial_data_template:
            order_id: "{{{{ state.order_id }}}}-child"
          automate_next: true
        - name: Close
          function: {STEPS}.mark
        """,
}


SAGA = f"""
    - name: Book
      function: {R}.count
      compensate_function: {R}.undo_dies_first
      automate_next: true
    - name: Pay
      function: {R}.declined
    """


class LostTasks(SyncExecutionProvider):
    """Sends ASYNC tasks to a worker that never reports (it died with them)."""

    async def dispatch_async_task(self, task: AsyncTask, *args: Any, **kwargs: Any) -> Any:
        return TaskDispatched(f"lost-{task.step_name}")


@pytest.fixture
def config(tmp_path: Path) -> ConfigDir:
    directory = ConfigDir(tmp_path / "config")
    directory.write_all({name: workflow(name, text) for name, text in WORKFLOWS.items()})
    directory.write("Saga", workflow("Saga", SAGA, header="saga_enabled: true"))
    return directory


@pytest.fixture
def builder(config: ConfigDir, store: PersistenceProvider) -> WorkflowBuilder:
    return config.builder(store)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (bounded, polling) until ``check()`` holds."""
    for _ in range(2000):
        if await check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def dead_worker(store: PersistenceProvider, workflow: Workflow, step: str | None) -> None:
    """Leave the heartbeat a worker leaves when it dies in ``step``."""
    await store.upsert_heartbeat(workflow.id, "dead-worker", step, {"pid": 0})


async def died_in_charge(builder: WorkflowBuilder, workflow_type: str = "Order") -> Workflow:
    """A run whose worker died in the middle of Charge: ACTIVE at Charge, Prepare committed,
    and a heartbeat that nobody refreshes."""
    run = await builder.create_workflow(workflow_type, {"order_id": "O-1"})
    steps.DYING.add(run.id)
    with pytest.raises(steps.ProcessDied):
        await run.next_step()
        if workflow_type == "Order":
            await run.next_step()
    assert run.current_step_name == "Charge"
    await dead_worker(run.persistence, run, "Charge")
    return run
