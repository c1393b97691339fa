"""``Workflow``: one running instance. Its public API drives the step cycle
(``_workflow_step``), which runs the current step's runner, merges and routes the outcome, and
commits result, state, status, pointer and audit entry in one call (``_workflow_core``)."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

from ruvon._workflow_children import ROLLED_BACK_KEY, ChildWorkflows
from ruvon.definition.compiled import CompiledWorkflow
from ruvon.errors import (
    JumpTargetError,
    WorkflowStateError,
)
from ruvon.lease import RunLease
from ruvon.models import (
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    WorkflowStatus,
)
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import (
    AuditEvent,
    PersistenceProvider,
    WorkflowRecord,
)
from ruvon.providers.services import NO_SERVICES, StepServices
from ruvon.providers.template_engine import TemplateEngine
from ruvon.state import (
    dump_state,
)

__all__ = ["Workflow"]

_RUNNABLE = frozenset(
    {
        WorkflowStatus.ACTIVE,
        WorkflowStatus.PAUSED,
        WorkflowStatus.WAITING_HUMAN,
        WorkflowStatus.WAITING_HUMAN_INPUT,
    }
)


class _Done:
    """An awaitable that does nothing: lets ``enable_saga_mode()`` be awaited or not."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


class Workflow(ChildWorkflows):
    """One workflow instance: its state, status and position, and the providers it runs with.

    Build instances with ``WorkflowBuilder.create_workflow`` / ``load_workflow``, or directly
    from a stored record with :meth:`from_record`.
    """

    @classmethod
    def from_record(
        cls,
        compiled: CompiledWorkflow,
        record: WorkflowRecord,
        *,
        persistence_provider: PersistenceProvider,
        execution_provider: ExecutionProvider,
        expression_evaluator: ExpressionEvaluator,
        template_engine: TemplateEngine,
        workflow_observer: object | None = None,
        state: Any = None,
        validate_state: bool = True,
        services: StepServices = NO_SERVICES,
        lease: RunLease | None = None,
    ) -> Workflow:
        """Rebuild a workflow from its stored record and its compiled snapshot.

        Raises :class:`StoredStateError` if the stored state no longer validates; with
        ``validate_state=False`` the workflow is built anyway, with the raw stored dict as
        ``state``, and only :meth:`cancel` is allowed on it. ``lease``: the lease the record
        was stored with, already granted to this object (a workflow created to be driven at
        once)."""
        return cls(
            compiled,
            record,
            persistence_provider=persistence_provider,
            execution_provider=execution_provider,
            expression_evaluator=expression_evaluator,
            template_engine=template_engine,
            workflow_observer=workflow_observer,
            state=state,
            validate_state=validate_state,
            services=services,
            lease=lease,
        )

    def to_dict(self) -> dict[str, Any]:
        """The workflow as a JSON-ready dict (the shape of the stored record)."""
        return {
            "id": self.id,
            "workflow_type": self.workflow_type,
            "workflow_version": self.workflow_version,
            "status": self.status.value,
            "current_step": self.current_step_name,
            "current_step_index": self.current_step_index,
            "state": dump_state(self.state),
            "state_model_path": self.state_model_path,
            "metadata": self.metadata,
            "saga_mode": self.saga_mode,
            "completed_steps_stack": self.completed_steps_stack,
            "parent_execution_id": self.parent_execution_id,
            "blocked_on_child_id": self.blocked_on_child_id,
            "owner_id": self.owner_id,
            "org_id": self.org_id,
            "data_region": self.data_region,
            "priority": self.priority,
            "idempotency_key": self.idempotency_key,
            "error_message": self.error_message,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        }

    def __repr__(self) -> str:
        return (
            f"<Workflow {self.workflow_type} {self.id} {self.status.value} "
            f"at {self.current_step_name!r}>"
        )

    def input_schema(self, step_name: str | None = None) -> dict[str, Any] | None:
        """The JSON Schema of the ``input_model`` of step ``step_name`` (default: the current
        step, the one a waiting workflow resumes with): what ``next_step(user_input)`` accepts
        there, e.g. to build a form or prompt for each field.

        None when the step has no ``input_model`` (or, by default, when no step is current:
        the workflow has ended). Raises :class:`JumpTargetError` for an unknown step name.
        """
        if step_name is None:
            current = self.current_step
            if current is None:
                return None
            index = current.index
        else:
            found = self._compiled.step_index(step_name)
            if found is None:
                raise JumpTargetError(step_name)
            index = found
        model = self._compiled.steps[index].input_model
        return None if model is None else model.model_json_schema()

    # -- driving ---------------------------------------------------------------------------

    async def next_step(
        self, user_input: Mapping[str, Any] | None = None, *, actor: str | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """Run the current step (and the steps ``automate_next`` chains to it).

        Returns the result of the last step run and the name of the step the next call runs
        (None once the workflow has ended). Waiting for input is not an error: the call returns
        with ``status`` PAUSED or WAITING_HUMAN. A failing step fails the workflow and its
        exception is re-raised with ``workflow_id``, ``step_name`` and ``workflow_status`` set.
        ``actor`` (who asks: a user or service id) is recorded as ``user_id`` of every audit
        entry the call writes, next to the input values. On a run whose saga rollback was
        interrupted (:attr:`rolling_back`) the call finishes the rollback instead
        (:meth:`resume_rollback`) and returns ``({}, None)``.
        """
        async with self._lock:
            self._require_runnable()
            if self.rolling_back:
                await self._resume_rollback_as(actor)
                return {}, None
            data = dict(user_input or {})
            first = True
            result: dict[str, Any] = {}
            self._actor = actor
            before = self.status
            try:
                while True:
                    step_result, go_on = await self._run_current(data, first)
                    first = False
                    if step_result is not None:
                        result = step_result
                    if not go_on:
                        break
            finally:
                self._actor = None
                await self._release_lease()
                if self.status is not before:
                    await self._tell_parent()
            return result, self.current_step_name

    async def run(
        self,
        user_input: Mapping[str, Any] | None = None,
        *,
        max_steps: int = 100_000,
        actor: str | None = None,
    ) -> WorkflowStatus:
        """Run steps until the workflow completes, fails or waits for input; return the status."""
        data: Mapping[str, Any] | None = user_input
        for _ in range(max_steps):
            if self.status is not WorkflowStatus.ACTIVE and data is None:
                break
            await self.next_step(data, actor=actor)
            data = None
        return self.status

    async def resume(
        self,
        user_input: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], str | None]:
        """Resume a PAUSED or WAITING_HUMAN workflow with ``user_input`` (alias ``input=``);
        ``actor`` is recorded in the audit log with the input."""
        if not self.status.is_waiting:
            raise WorkflowStateError(
                f"Workflow {self.id} is {self.status.value}; only a waiting workflow can resume."
            )
        data = user_input if user_input is not None else kwargs.get("input")
        return await self.next_step(data, actor=actor)

    async def resume_rollback(self, *, actor: str | None = None) -> WorkflowStatus:
        """Finish a saga rollback that was interrupted (the process died, or a commit failed):
        run the compensations still on ``completed_steps_stack``, each committed as it
        completes, and end the run FAILED_ROLLED_BACK; return that status.

        Compensations whose outcome was committed never run again; the one that was
        interrupted runs again (at least once). Raises :class:`WorkflowStateError` unless the
        run is :attr:`rolling_back`. ``actor`` is recorded in the audit and compensation logs.
        """
        async with self._lock:
            self._require_readable()
            return await self._resume_rollback_as(actor)

    async def _resume_rollback_as(self, actor: str | None) -> WorkflowStatus:
        self._actor = actor
        before = self.status
        try:
            return await self._resume_rollback()
        finally:
            self._actor = None
            await self._release_lease()
            if self.status is not before:  # a child's rollback ended: its parent hears of it
                await self._tell_parent()

    def enable_saga_mode(self) -> _Done:
        """Compensate completed steps when a step fails. Awaiting the call is optional; the
        flag is stored with the next commit."""
        self.saga_mode = True
        return _Done()

    async def save(self) -> None:
        """Store the workflow as it is now (e.g. after changing ``state`` or ``metadata``).
        Raises :class:`StateValidationError` (storing nothing) if the state does not validate."""
        async with self._lock:
            self._require_readable()
            state = self._validated_state()
            await self._commit(
                self.status,
                state,
                self.current_step_index,
                self.metadata,
                [AuditEvent("WORKFLOW_SAVED", step_name=self.current_step_name)],
                error_message=self.error_message,
            )

    async def cancel(self, reason: str | None = None, *, actor: str | None = None) -> None:
        """Cancel the workflow (no compensation runs). Not allowed once it has ended.
        ``actor`` is recorded in the audit log."""
        async with self._lock:
            if self.status in TERMINAL_STATUSES:
                raise WorkflowStateError(
                    f"Workflow {self.id} is {self.status.value} and cannot be cancelled."
                )
            # Nothing is awaited any more: a cancelled workflow waits for nothing.
            metadata = {k: v for k, v in self.metadata.items() if k != "waiting_for"}
            metadata["cancellation_reason"] = reason
            await self._change_status(
                WorkflowStatus.CANCELLED,
                AuditEvent("WORKFLOW_CANCELLED", data={"reason": reason}, user_id=actor),
                metadata=metadata,
                completed=True,
            )

    async def jump_to_step(self, target_step_name: str, *, actor: str | None = None) -> None:
        """Make ``target_step_name`` the step the next call runs (forward or backward)."""
        async with self._lock:
            self._require_readable()
            index = self._compiled.step_index(target_step_name)
            if index is None:
                raise JumpTargetError(target_step_name)
            if self.status not in _RUNNABLE or self.rolling_back:
                doing = "rolling back" if self.rolling_back else self.status.value
                raise WorkflowStateError(
                    f"Workflow {self.id} is {doing}; it cannot jump to a step."
                )
            audit = AuditEvent(
                "WORKFLOW_JUMPED",
                step_name=target_step_name,
                data={"from_step": self.current_step_name, "to_step": target_step_name},
                user_id=actor,
            )
            # A jump ends any wait: the workflow no longer waits for anything.
            metadata = {k: v for k, v in self.metadata.items() if k != "waiting_for"}
            await self._change_status(WorkflowStatus.ACTIVE, audit, index=index, metadata=metadata)

    async def retry(self, from_step: str | None = None, *, actor: str | None = None) -> None:
        """Make a failed workflow ACTIVE again, at ``from_step`` or at the step that failed.

        The next ``next_step``/``run`` call runs that step again. A FAILED_ROLLED_BACK workflow
        cannot be retried: its completed steps were compensated; start a new one.
        """
        async with self._lock:
            self._require_readable()
            if self.status is WorkflowStatus.FAILED_ROLLED_BACK or (
                self.status is WorkflowStatus.FAILED_CHILD_WORKFLOW
                and self.metadata.get(ROLLED_BACK_KEY)
            ):
                raise WorkflowStateError(self._rolled_back_message("retried"))
            if self.status not in RETRYABLE_STATUSES:
                raise WorkflowStateError(
                    f"Workflow {self.id} is {self.status.value}; only FAILED, "
                    "FAILED_WORKER_CRASH and FAILED_CHILD_WORKFLOW workflows can be retried."
                )
            index = self.current_step_index
            if from_step is not None:
                found = self._compiled.step_index(from_step)
                if found is None:
                    raise JumpTargetError(from_step)
                index = found
            step_name = self._compiled.steps[index].name if index < len(self.steps) else None
            audit = AuditEvent(
                "WORKFLOW_RETRIED",
                step_name=step_name,
                data={"from_step": step_name},
                user_id=actor,
            )
            await self._change_status(
                WorkflowStatus.ACTIVE,
                audit,
                index=index,
                clear_error=True,
                progress=self.progress.reset(self.current_step_name or "")
                if index == self.current_step_index
                else None,
            )

    def _rolled_back_message(self, action: str) -> str:
        return (
            f"Workflow {self.id} is {self.status.value} and cannot be {action}: its completed "
            "steps were compensated, so the run is final. Start a new workflow instead."
        )

    def _require_readable(self) -> None:
        """Refuse to drive a run whose state could not be read or whose last failure could not
        be recorded (cancelling is still allowed)."""
        if self._broken is not None:
            raise WorkflowStateError(
                f"Workflow {self.id} cannot run from this object: {self._broken}"
            ) from self._broken

    def _require_runnable(self) -> None:
        self._require_readable()
        if self.status is WorkflowStatus.FAILED_ROLLED_BACK:
            raise WorkflowStateError(self._rolled_back_message("run"))
        if self.status in (
            WorkflowStatus.PENDING_SUB_WORKFLOW,
            WorkflowStatus.WAITING_CHILD_HUMAN_INPUT,
        ):
            waiting = self.metadata.get("waiting_child_id") or self.blocked_on_child_id
            raise WorkflowStateError(
                f"Workflow {self.id} is {self.status.value}: it waits for its child workflow "
                f"{waiting}. Drive that workflow (resume it with next_step); this one goes on "
                "when its child completes."
            )
        if self.status not in _RUNNABLE:
            raise WorkflowStateError(
                f"Workflow {self.id} is {self.status.value}; next_step() needs an ACTIVE, "
                "PAUSED or WAITING_HUMAN workflow."
            )
