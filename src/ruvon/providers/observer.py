"""The observer contract: hooks called as a workflow runs (after each commit).

Subclass :class:`WorkflowObserver` and override the hooks you need, or write any class with
some of these ``async`` methods: the engine calls only the hooks an observer has, with only the
keyword arguments the hook accepts. An observer that raises is logged and ignored: observing
never changes the outcome of a workflow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoOpObserver", "NoopObserver", "NoopWorkflowObserver", "WorkflowObserver"]


class WorkflowObserver:
    """Base class with no-op hooks."""

    async def initialize(self) -> None:
        """Prepare resources."""

    async def close(self) -> None:
        """Release resources."""

    async def on_workflow_started(
        self, workflow_id: str, workflow_type: str, initial_state: Any
    ) -> None:
        """A workflow was created and stored."""

    async def on_step_executed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        status: str,
        result: dict[str, Any] | None,
        current_state: Any,
        duration_ms: float | None = None,
    ) -> None:
        """A step finished and its outcome was committed (status: COMPLETED, JUMPED, PAUSED)."""

    async def on_step_failed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        error_message: str,
        current_state: Any,
    ) -> None:
        """A step raised (after its retries)."""

    async def on_workflow_completed(
        self, workflow_id: str, workflow_type: str, final_state: Any
    ) -> None:
        """The last step completed."""

    async def on_workflow_failed(
        self, workflow_id: str, workflow_type: str, error_message: str, current_state: Any
    ) -> None:
        """The workflow ended in a FAILED status."""

    async def on_workflow_status_changed(
        self,
        workflow_id: str,
        old_status: str,
        new_status: str,
        current_step_name: str | None,
        final_result: dict[str, Any] | None = None,
    ) -> None:
        """Any status change."""

    async def on_workflow_paused(self, workflow_id: str, step_name: str, reason: str) -> None:
        """The workflow waits for input (reason: HUMAN_IN_LOOP or PAUSE_DIRECTIVE)."""

    async def on_workflow_resumed(
        self, workflow_id: str, step_name: str, resume_data: dict[str, Any]
    ) -> None:
        """A waiting workflow received input and runs again."""

    async def on_child_workflow_started(
        self, parent_id: str, child_id: str, child_type: str, step_name: str
    ) -> None:
        """Step ``step_name`` of ``parent_id`` started the child workflow ``child_id``; the
        parent waits for it (PENDING_SUB_WORKFLOW)."""

    async def on_compensation_started(
        self, workflow_id: str, step_name: str, step_index: int
    ) -> None:
        """The compensation of ``step_name`` runs next (the rollback's commit made it next)."""

    async def on_compensation_completed(
        self, workflow_id: str, step_name: str, success: bool, error: str | None = None
    ) -> None:
        """The outcome of the compensation of ``step_name`` was committed."""

    async def on_workflow_rolled_back(
        self, workflow_id: str, workflow_type: str, step_name: str, error_message: str
    ) -> None:
        """A saga's rollback ended (after ``step_name`` failed); the run is FAILED_ROLLED_BACK."""


class NoopObserver(WorkflowObserver):
    """Observes nothing; the default."""


NoOpObserver = NoopObserver
NoopWorkflowObserver = NoopObserver
