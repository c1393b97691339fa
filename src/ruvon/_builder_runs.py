"""What the builder offers about stored runs besides creating and loading one: queries (an
underwriter's inbox) and the report of a dispatched ASYNC step from another process."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ruvon.errors import ConcurrencyConflictError
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord

if TYPE_CHECKING:
    from ruvon.workflow import Workflow

__all__ = ["RunQueries"]


class RunQueries:
    """``WorkflowBuilder.list_workflows``, ``count_workflows`` and ``complete_async_step``."""

    if TYPE_CHECKING:  # provided by WorkflowBuilder

        async def _persistence(
            self,
            provider: PersistenceProvider | None,
            execution: ExecutionProvider | None = None,
            observer: object | None = None,
        ) -> PersistenceProvider: ...

        async def load_workflow(
            self,
            workflow_id: str,
            *,
            persistence_provider: PersistenceProvider | None = None,
            execution_provider: ExecutionProvider | None = None,
            workflow_observer: object | None = None,
            validate_state: bool = True,
        ) -> Workflow: ...

    async def list_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        parent_workflow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        persistence_provider: PersistenceProvider | None = None,
    ) -> list[WorkflowRecord]:
        """The stored workflows matching every given filter, newest first, as records (nothing
        is compiled or loaded: load one with :meth:`load_workflow` to drive it).

        ``status`` is one status or several; ``created_after`` (inclusive) and
        ``created_before`` (exclusive) must be timezone-aware. Raises ``ValueError`` for an
        unknown status, a naive datetime or a negative ``limit``/``offset``.
        """
        persistence = await self._persistence(persistence_provider)
        return await persistence.list_workflows(
            status=status,
            workflow_type=workflow_type,
            owner_id=owner_id,
            org_id=org_id,
            parent_workflow_id=parent_workflow_id,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )

    async def count_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        parent_workflow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        persistence_provider: PersistenceProvider | None = None,
    ) -> int:
        """How many stored workflows match the filters of :meth:`list_workflows` (its total
        without ``limit`` and ``offset``)."""
        persistence = await self._persistence(persistence_provider)
        return await persistence.count_workflows(
            status=status,
            workflow_type=workflow_type,
            owner_id=owner_id,
            org_id=org_id,
            parent_workflow_id=parent_workflow_id,
            created_after=created_after,
            created_before=created_before,
        )

    async def complete_async_step(
        self,
        workflow_id: str,
        step_index: int,
        token: str,
        *,
        result: dict[str, Any] | None = None,
        error: BaseException | None = None,
        duration_ms: float | None = None,
        persistence_provider: PersistenceProvider | None = None,
        execution_provider: ExecutionProvider | None = None,
    ) -> bool:
        """Report the outcome of a dispatched ASYNC step from anywhere (a worker, another
        process): load the workflow and apply it once (``Workflow.complete_async_step``;
        ``duration_ms``: how long the function ran).

        Returns False, changing nothing, for a stale or repeated report. A report that races
        another writer is retried on the reloaded workflow, where the token decides again.
        """
        for attempt in range(_REPORT_ATTEMPTS):
            workflow = await self.load_workflow(
                workflow_id,
                persistence_provider=persistence_provider,
                execution_provider=execution_provider,
            )
            try:
                return await workflow.complete_async_step(
                    step_index, token, result=result, error=error, duration_ms=duration_ms
                )
            except ConcurrencyConflictError:
                if attempt == _REPORT_ATTEMPTS - 1:
                    raise
                # Siblings reporting at the same moment: let one of them commit first.
                await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        return False  # pragma: no cover - the loop returns or raises

    async def run_dispatched_step(
        self,
        workflow_id: str,
        step_index: int,
        token: str,
        *,
        user_input: Mapping[str, Any] | None = None,
        persistence_provider: PersistenceProvider | None = None,
        execution_provider: ExecutionProvider | None = None,
    ) -> bool:
        """What a remote worker does with a dispatched step it received: load the workflow,
        run the step's function here (``Workflow.run_dispatched``: with a heartbeat, on the
        committed state, with the ``user_input`` sent with the task) and report its outcome
        (:meth:`complete_async_step`), which merges, commits and goes on with the steps
        ``automate_next`` chains to it — in this process.

        Returns False, running nothing, when the dispatch does not apply any more (the step
        was already applied, a stale token): a redelivered message is dropped before the
        function runs. True when the outcome was applied."""
        workflow = await self.load_workflow(
            workflow_id,
            persistence_provider=persistence_provider,
            execution_provider=execution_provider,
        )
        outcome = await workflow.run_dispatched(step_index, token, user_input)
        if outcome is None:
            return False
        duration_ms = outcome.seconds * 1000.0
        try:
            return await workflow.complete_async_step(
                step_index,
                token,
                result=outcome.result,
                error=outcome.error,
                duration_ms=duration_ms,
            )
        except ConcurrencyConflictError:  # the run moved on meanwhile: read it again
            pass
        # The function ran: its report must not be lost to siblings reporting at the same
        # moment (many tasks of one PARALLEL step), so it is tried for up to a minute.
        deadline = asyncio.get_running_loop().time() + _REPORT_PATIENCE_SECONDS
        while True:
            try:
                return await self.complete_async_step(
                    workflow_id,
                    step_index,
                    token,
                    result=outcome.result,
                    error=outcome.error,
                    duration_ms=duration_ms,
                    persistence_provider=persistence_provider,
                    execution_provider=execution_provider,
                )
            except ConcurrencyConflictError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.1))


_REPORT_PATIENCE_SECONDS = 60.0
"""How long a worker keeps trying to report a function it ran against a row other writers keep
moving, before it gives up (the delivery is then retried by the broker)."""

_REPORT_ATTEMPTS = 10
"""How often a report is tried against a row that other writers keep moving (siblings of a
DAG stage or the tasks of a PARALLEL step reporting at once)."""
