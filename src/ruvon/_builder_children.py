"""The builder as the engine's workflow starter: it creates the children and spawned runs that
steps ask for, and tells parents where their children are (``providers.services``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ruvon._builder_runs import RunQueries
from ruvon.errors import ConcurrencyConflictError, WorkflowNotFoundError
from ruvon.providers.services import StartRequest

if TYPE_CHECKING:
    from ruvon.workflow import Workflow

__all__ = ["ChildStarts"]

logger = logging.getLogger("ruvon.builder")

_NOTIFY_ATTEMPTS = 3


class ChildStarts(RunQueries):
    """``start_workflow_for``, ``notify_parent`` and ``settle_child``."""

    if TYPE_CHECKING:  # provided by WorkflowBuilder

        async def create_workflow(
            self,
            workflow_type: str,
            initial_data: Mapping[str, Any] | None = None,
            *,
            owner_id: str | None = None,
            org_id: str | None = None,
            data_region: str | None = None,
            idempotency_key: str | None = None,
            metadata: Mapping[str, Any] | None = None,
            parent_execution_id: str | None = None,
        ) -> Workflow: ...

    async def start_workflow_for(self, request: StartRequest) -> Workflow:
        """Create the workflow a step starts (or find it by its idempotency key); it is not
        run here (see ``providers.services.WorkflowStarter``)."""
        return await self.create_workflow(
            request.workflow_type,
            request.initial_data,
            owner_id=request.owner_id,
            org_id=request.org_id,
            data_region=request.data_region,
            idempotency_key=request.idempotency_key,
            metadata=request.metadata,
            parent_execution_id=request.parent_execution_id,
        )

    async def notify_parent(self, child: Any) -> None:
        """Apply ``child``'s status to its parent (which may complete, fail or wait in turn
        and tell its own parent). A parent another process moved on meanwhile is read again."""
        parent_id = child.parent_execution_id
        if parent_id is None:
            return
        for _ in range(_NOTIFY_ATTEMPTS):
            parent = await self.load_workflow(parent_id)
            try:
                await parent.apply_child(child)
                return
            except ConcurrencyConflictError:
                continue
        logger.warning("Parent %s of %s kept moving; not told this time", parent_id, child.id)

    async def settle_child(self, child_id: str) -> bool:
        """Tell the parent of ``child_id`` where its child is, when that was not done (the
        process driving the child stopped after the child's commit, before the parent's).
        Safe to call any time: a parent not waiting for this child ignores it. Returns True
        when the child has a parent."""
        child = await self.load_workflow(child_id)
        if child.parent_execution_id is None:
            return False
        try:
            await self.notify_parent(child)
        except WorkflowNotFoundError:
            logger.warning(
                "Child %s names parent %s, which does not exist",
                child_id,
                child.parent_execution_id,
            )
        return True
