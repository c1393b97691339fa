"""``TestHarness``: drive your workflows in tests, in memory by default.

harness = TestHarness(config_dir="config/")
workflow = await harness.start_workflow("OrderApproval", {"order_id": "A1", "amount": 50})
await harness.run(workflow.id)                       # until done or waiting
await harness.next_step(workflow.id, {"approved": True})
assert (await harness.load_workflow(workflow.id)).status == "COMPLETED"
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ruvon.builder import WorkflowBuilder
from ruvon.definition.loader import clear_import_cache
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.models import WorkflowStatus
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.persistence import AuditEvent, PersistenceProvider
from ruvon.workflow import Workflow

__all__ = ["TestHarness", "WorkflowTestHarness"]


class TestHarness:
    """Creates and drives workflows with real providers (memory + in-process by default)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        config_dir: str | os.PathLike[str] | None = None,
        workflow_registry: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        persistence: PersistenceProvider | None = None,
        execution: ExecutionProvider | None = None,
        observer: object | None = None,
    ) -> None:
        self.persistence: PersistenceProvider = persistence or MemoryPersistenceProvider()
        self.execution: ExecutionProvider = execution or SyncExecutionProvider()
        self.builder = WorkflowBuilder(
            workflow_registry,
            config_dir=config_dir,
            persistence_provider=self.persistence,
            execution_provider=self.execution,
            workflow_observer=observer,
        )
        self.workflows: dict[str, Workflow] = {}
        # Each harness imports step functions afresh: a module patched (or reloaded) since the
        # last harness is seen as it is now.
        clear_import_cache()

    def override_step(
        self, step_name: str, func: Callable[..., Any], *, workflow_type: str | None = None
    ) -> None:
        """Run ``func`` instead of the function of step ``step_name`` (of ``workflow_type``
        only, if given) in this harness's workflows — e.g. a fake payment call. The override
        belongs to this harness: other harnesses and builders run the real function."""
        self.builder.override_step(step_name, func, workflow_type=workflow_type)
        self.workflows.clear()  # later calls load the workflows again, with the override

    async def start_workflow(
        self, workflow_type: str, initial_data: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Workflow:
        """Create a workflow; the returned object is the one later calls advance."""
        workflow = await self.builder.create_workflow(workflow_type, initial_data, **kwargs)
        self.workflows[workflow.id] = workflow
        return workflow

    async def _live(self, workflow_id: str) -> Workflow:
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            workflow = self.workflows[workflow_id] = await self.builder.load_workflow(workflow_id)
        return workflow

    async def next_step(
        self,
        workflow_id: str,
        user_input: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Run the next step of a workflow and return that step's result (the last step's,
        when ``automate_next`` chains several)."""
        result, _ = await (await self._live(workflow_id)).next_step(user_input, actor=actor)
        return result

    async def run(
        self,
        workflow_id: str,
        user_input: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> WorkflowStatus:
        """Run until the workflow completes, fails or waits; return its status."""
        return await (await self._live(workflow_id)).run(user_input, actor=actor)

    async def load_workflow(self, workflow_id: str) -> Workflow:
        """A fresh instance read back from persistence (what another process would see)."""
        return await self.builder.load_workflow(workflow_id)

    async def audit_log(self, workflow_id: str) -> list[AuditEvent]:
        """The workflow's audit entries, oldest first."""
        return await self.persistence.get_audit_log(workflow_id, limit=10_000)

    async def audit_events(self, workflow_id: str) -> list[str]:
        """The event types of the workflow's audit log, oldest first."""
        return [event.event_type for event in await self.audit_log(workflow_id)]


WorkflowTestHarness = TestHarness
