"""The builder initializes every provider it uses once, and closes its own defaults."""

from __future__ import annotations

from typing import Any

from ruvon import WorkflowBuilder
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from tests.support.config import ConfigDir


class CountingExecution(SyncExecutionProvider):
    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.closed = 0

    async def initialize(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1


class CountingObserver:
    """An observer without a base class; initialize/close are optional hooks."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.steps: list[str] = []

    def initialize(self) -> None:  # a plain (non-async) hook works too
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1

    async def on_step_executed(self, step_name: str, **_: Any) -> None:
        self.steps.append(step_name)


async def test_providers_are_initialized_once_and_closed_by_the_builder(
    config: ConfigDir,
) -> None:
    execution, observer = CountingExecution(), CountingObserver()
    builder = WorkflowBuilder(
        config.registry_path,
        persistence_provider=MemoryPersistenceProvider(),
        execution_provider=execution,
        workflow_observer=observer,
    )
    first = await builder.create_workflow("Approval", {"order_id": "L1"})
    await builder.create_workflow("Approval", {"order_id": "L2"})
    await builder.load_workflow(first.id)
    await first.next_step()
    assert (execution.opened, observer.opened) == (1, 1)
    assert observer.steps == ["Prepare"]

    await builder.close()
    assert (execution.closed, observer.closed) == (1, 1)


async def test_a_provider_passed_to_one_call_is_initialized_but_not_closed(
    config: ConfigDir,
) -> None:
    builder = WorkflowBuilder(
        config.registry_path, persistence_provider=MemoryPersistenceProvider()
    )
    execution = CountingExecution()
    await builder.create_workflow("Approval", {"order_id": "L3"}, execution_provider=execution)
    await builder.close()
    assert (execution.opened, execution.closed) == (1, 0)
