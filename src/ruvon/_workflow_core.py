"""The core of a ``Workflow``: its stored fields, its read-only views and the commit path.

Everything that changes a workflow goes through :meth:`WorkflowCore._commit`: one call of the
persistence provider with the row, the audit entries, metrics and logs; the object takes the
new values only when that call returned (docs/architecture.md, "One step, one commit").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from ruvon._workflow_retries import DurableRetries, retry_due_at
from ruvon.dag import Dependencies, dependencies_of
from ruvon.definition.compiled import CompiledStep, CompiledWorkflow
from ruvon.errors import (
    StateValidationError,
    StoredStateError,
    WorkflowNotFoundError,
)
from ruvon.lease import RunLease
from ruvon.models import (
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    WorkflowStatus,
    WorkflowStep,
    check_transition,
    normalize_status,
)
from ruvon.observing import Notice, ObserverHub
from ruvon.progress import Progress
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import (
    AuditEvent,
    CompensationEntry,
    LogEntry,
    MetricPoint,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
    WorkflowUpdate,
)
from ruvon.providers.services import NO_SERVICES, StepServices
from ruvon.providers.template_engine import TemplateEngine
from ruvon.serialization import Encoded
from ruvon.state import describe_errors, encode_state

__all__ = ["WorkflowCore"]

_BLOCKED_ON_CHILD = frozenset(
    {
        WorkflowStatus.PENDING_SUB_WORKFLOW,
        WorkflowStatus.WAITING_CHILD_HUMAN_INPUT,
        WorkflowStatus.FAILED_CHILD_WORKFLOW,
    }
)

logger = logging.getLogger("ruvon.workflow")


class WorkflowCore:
    """A workflow's stored fields and the one way to change them (``_commit``)."""

    def __init__(
        self,
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
    ) -> None:
        if persistence_provider is None or execution_provider is None:
            raise ValueError("Workflow needs a persistence_provider and an execution_provider")
        self._compiled = compiled
        self._persistence = persistence_provider
        self._execution = execution_provider
        self._evaluator = expression_evaluator
        self._templates = template_engine
        self._observer = workflow_observer
        self._services = services
        self._hub = ObserverHub(workflow_observer)
        self._lock = asyncio.Lock()
        self._dag: Dependencies | None = dependencies_of(compiled.steps)
        """The dependency graph when steps declare ``dependencies`` (DAG mode), else None."""
        self.progress: Progress = Progress.from_json(record.progress, cursor=record.current_step)
        """The run's durable progress record (per-step statuses, the last result)."""
        # A reload restores the previous step's result for the next step's context.
        self._last_result: dict[str, Any] | None = self.progress.last_result
        self._actor: str | None = None
        # A proxy, not the object: a reference cycle would leave every workflow to the cyclic
        # garbage collector (measurably slower on W5) instead of freeing it at once.
        self._retries = DurableRetries(weakref.proxy(self))
        """Commits failed attempts of steps with a retry policy (see ``_workflow_retries``)."""
        self._away: dict[str, Any] = {}
        """Steps of this run in the background, by dispatch token (their heartbeat entries)."""
        self._broken: BaseException | None = None
        """Why this object may not drive the run any more (its state is unreadable, or the
        record of a failure could not be committed)."""
        self._lease = RunLease.for_services(services) if lease is None else lease
        """This object's lease on the run while it drives it (``ruvon.lease``)."""

        self.id: str = record.id
        self.workflow_type: str = record.workflow_type
        self.workflow_version: str | None = record.workflow_version
        self.definition_snapshot: dict[str, Any] = record.definition_snapshot
        self.state_model_path: str = record.state_model_path
        self.status: WorkflowStatus = WorkflowStatus(record.status)
        self.current_step_index: int = record.current_step_index
        self.metadata: dict[str, Any] = dict(record.metadata)
        self.saga_mode: bool = record.saga_mode
        self.completed_steps_stack: list[dict[str, Any]] = list(record.completed_steps_stack)
        self.parent_execution_id: str | None = record.parent_execution_id
        self.blocked_on_child_id: str | None = record.blocked_on_child_id
        self.owner_id: str | None = record.owner_id
        self.org_id: str | None = record.org_id
        self.data_region: str | None = record.data_region
        self.priority: int = record.priority
        self.idempotency_key: str | None = record.idempotency_key
        self.error_message: str | None = record.error_message
        self.version: int = record.version
        self.created_at: datetime | None = record.created_at
        self.updated_at: datetime | None = record.updated_at
        self.completed_at: datetime | None = record.completed_at
        self._committed_state: Mapping[str, Any] | Encoded = record.state
        """The state as last committed (as loaded, or as encoded for the last commit)."""
        # ``state``, when given, is the already validated state of ``record`` (saves a parse).
        if state is not None:
            self.state: Any = state
        elif validate_state:
            self.state = self._rebuild_state(record.state)
        else:
            try:
                self.state = self._rebuild_state(record.state)
            except StoredStateError as exc:
                # Inspectable and cancellable, nothing else: ``state`` is the raw stored dict.
                self.state = dict(record.state)
                self._broken = exc

    async def _refresh(self) -> None:
        """Take the stored row's current values (another process has committed since this
        object last did): everything a commit can change."""
        record = await self._persistence.load_workflow(self.id)
        if record is None:
            raise WorkflowNotFoundError(self.id)
        self.state = self._rebuild_state(record.state)
        self._committed_state = record.state
        self.status = WorkflowStatus(record.status)
        self.current_step_index = record.current_step_index
        self.metadata = dict(record.metadata)
        self.completed_steps_stack = list(record.completed_steps_stack)
        self.blocked_on_child_id = record.blocked_on_child_id
        self.error_message = record.error_message
        self.version = record.version
        self.updated_at = record.updated_at
        self.completed_at = record.completed_at
        self.progress = Progress.from_json(record.progress, cursor=record.current_step)
        self._last_result = self.progress.last_result

    @property
    def steps(self) -> list[WorkflowStep]:
        """The workflow's steps, in file order."""
        return [step.public for step in self._compiled.steps]

    workflow_steps = steps

    @property
    def current_step(self) -> WorkflowStep | None:
        """The step the next call runs (equal to its name), or None when the workflow ended."""
        if self.status in TERMINAL_STATUSES and self.status not in RETRYABLE_STATUSES:
            return None
        if 0 <= self.current_step_index < len(self._compiled.steps):
            return self._compiled.steps[self.current_step_index].public
        return None

    @property
    def retry_at(self) -> datetime | None:
        """When the next attempt of a step between retries is due (``None``: no step waits
        for a retry). A ``next_step`` before that time is refused when the wait is long."""
        times = [retry_due_at(entry) for entry in self.progress.retries.values()]
        due = [at for at in times if at is not None]
        return min(due) if due else None

    @property
    def injected_steps(self) -> list[dict[str, Any]]:
        """The steps injected into this run by ``dynamic_injection`` rules, in order:
        ``{"after": <step name>, "step": <step configuration>}``."""
        return list(self.metadata.get("injected_steps") or [])

    @property
    def last_result(self) -> dict[str, Any] | None:
        """The result of the last step that completed (what the next step gets as
        ``context.previous_step_result``)."""
        return self._last_result

    @property
    def current_step_name(self) -> str | None:
        """The name of :attr:`current_step`."""
        step = self.current_step
        return step.name if step is not None else None

    @property
    def parent_workflow_id(self) -> str | None:
        """Alias of :attr:`parent_execution_id`."""
        return self.parent_execution_id

    @property
    def state_model(self) -> type[Any]:
        """The state's model class (``dict`` for ``builtins.dict``)."""
        return self._compiled.state_model

    @property
    def persistence(self) -> PersistenceProvider:
        """The persistence provider this workflow commits to."""
        return self._persistence

    # -- committing ------------------------------------------------------------------------

    def _end_wait(
        self,
        step: CompiledStep,
        resuming: WorkflowStatus,
        old_status: WorkflowStatus,
        user_input: Mapping[str, Any],
        audit: list[AuditEvent],
    ) -> dict[str, Any]:
        """Record that a waiting workflow resumed; return its metadata without ``waiting_for``."""
        check_transition(resuming, WorkflowStatus.ACTIVE)
        audit.append(
            AuditEvent(
                "WORKFLOW_RESUMED",
                step_name=step.name,
                old_status=old_status.value,
                new_status=WorkflowStatus.ACTIVE.value,
                data={"input_keys": sorted(user_input)},
                user_id=self._actor,
            )
        )
        return {k: v for k, v in self.metadata.items() if k != "waiting_for"}

    async def _change_status(
        self,
        status: WorkflowStatus,
        audit: AuditEvent,
        *,
        index: int | None = None,
        metadata: dict[str, Any] | None = None,
        completed: bool = False,
        clear_error: bool = False,
        progress: Progress | None = None,
        error_message: str | None = None,
    ) -> None:
        old = self.status
        check_transition(normalize_status(old) if old.is_waiting else old, status)
        event = AuditEvent(
            audit.event_type,
            step_name=audit.step_name,
            old_status=old.value,
            new_status=status.value,
            data=audit.data,
            user_id=audit.user_id,
        )
        await self._commit(
            status,
            self.state,
            self.current_step_index if index is None else index,
            self.metadata if metadata is None else metadata,
            [event],
            completed=completed,
            error_message=error_message or (None if clear_error else self.error_message),
            progress=progress,
        )

    async def _publish(
        self, old_status: WorkflowStatus, notices: Sequence[Notice], step_name: str | None
    ) -> None:
        """Tell observers about a committed transition: its own events, then the status change
        (from ``old_status``) and the hook of the status reached. Called by :meth:`_commit`
        only, after the write succeeded; observers never see a change that was not stored."""
        hub = self._hub
        for hook, kwargs in notices:
            await hub.emit(hook, **kwargs)
        if self.status is old_status:
            return
        await hub.status_changed(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            old_status=old_status,
            new_status=self.status,
            current_step_name=step_name or self.current_step_name,
            last_result=self._last_result,
            state=self.state,
            error_message=self.error_message,
        )

    async def _commit(
        self,
        status: WorkflowStatus,
        state: Any,
        index: int,
        metadata: dict[str, Any],
        audit: Sequence[AuditEvent],
        *,
        metrics: Sequence[MetricPoint] = (),
        logs: Sequence[LogEntry] = (),
        stack: list[dict[str, Any]] | None = None,
        completed: bool = False,
        error_message: str | None = None,
        state_json: Encoded | None = None,
        progress: Progress | None = None,
        notices: Sequence[Notice] = (),
        since: WorkflowStatus | None = None,
        status_step: str | None = None,
        compensations: Sequence[CompensationEntry] = (),
        blocked_on_child_id: str | None = None,
        hold: bool = False,
    ) -> None:
        """Write the new position in one provider call; update this object only if it
        succeeded, then publish the transition to observers (:meth:`_publish`).

        The commit is made under this object's lease, which it keeps (renewed) if ``hold``
        (the call goes on with another step) and releases otherwise.

        ``state_json`` is the encoded JSON of ``state`` when the caller has already made it;
        ``progress`` the new progress record (its cursor is set here, from ``index``);
        ``notices`` the transition's own observer events (build them only when
        ``self._hub.enabled``); ``since`` the status observers last saw, when it is not the
        one before this commit (a resumed wait); ``status_step`` the step to name in the
        status change (default: the step the run is now at); ``compensations`` the
        compensation-log entries of a saga's rollback, written in the same transaction."""
        old_status = self.status if since is None else since
        # A run names its child only while it waits for it, or failed because of it.
        blocked = blocked_on_child_id or (
            self.blocked_on_child_id if status in _BLOCKED_ON_CHILD else None
        )
        steps = self._compiled.steps
        cursor = steps[index].name if index < len(steps) else None
        progress = (self.progress if progress is None else progress).at(cursor)
        if state_json is None:
            state_json = encode_state(state)
        if self._actor is not None:
            actor = self._actor
            audit = [e if e.user_id else dataclasses.replace(e, user_id=actor) for e in audit]
        stack = self.completed_steps_stack if stack is None else stack
        completed_at = datetime.now(timezone.utc) if completed else self.completed_at
        lease = self._lease
        until = lease.extended() if hold else None
        update = WorkflowUpdate(
            workflow_id=self.id,
            status=status.value,
            state=state_json,
            current_step=cursor,
            current_step_index=index,
            metadata=metadata,
            completed_steps_stack=stack,
            progress=progress.to_json(),
            saga_mode=self.saga_mode,
            blocked_on_child_id=blocked,
            error_message=error_message,
            completed_at=completed_at,
            lease_owner=None if until is None else lease.owner,
            lease_expires_at=until,
        )
        self.version = await self._persistence.commit_workflow(
            WorkflowCommit(
                update,
                self.version,
                audit=audit,
                metrics=metrics,
                logs=logs,
                compensations=compensations,
                lease_holder=lease.owner,
            )
        )
        if until is None:
            lease.released()
        self.status = status
        self.state = state
        self._committed_state = state_json
        self.current_step_index = index
        self.metadata = metadata
        self.completed_steps_stack = stack
        self.error_message = error_message
        self.completed_at = completed_at
        self.progress = progress
        self._last_result = progress.last_result
        self.blocked_on_child_id = blocked
        if self._hub.enabled:
            await self._publish(old_status, notices, status_step)

    async def _claim_lease(self) -> None:
        """Make sure this object drives the run before a step function runs: claim the lease
        (one write that also moves the version on) unless this object holds it with time to
        spare. Raises ``WorkflowLeasedError`` if another driver holds it, and
        ``ConcurrencyConflictError`` if the run moved on since this object last saw it."""
        lease = self._lease
        if lease.fresh():
            return
        grant = await self._persistence.claim_lease(
            self.id, self.version, lease.owner, lease.seconds
        )
        lease.granted(grant.expires_at)
        self.version = grant.version
        self.updated_at = grant.updated_at

    async def _release_lease(self) -> None:
        """Let go of the lease if a call ends while holding it (normally its last commit
        released it). A failure is logged: the lease then runs out by itself."""
        lease = self._lease
        if not lease.held:
            return
        lease.released()
        try:
            await self._persistence.release_lease(self.id, lease.owner)
        except Exception:
            logger.warning("Releasing the lease of workflow %s failed", self.id, exc_info=True)

    def _validated_state(self) -> Any:
        if isinstance(self.state, BaseModel):
            model = type(self.state)
            try:
                return model.model_validate(self.state.model_dump(warnings=False))
            except ValidationError as exc:
                raise StateValidationError(describe_errors(exc), model=model.__name__) from None
        return dict(self.state)

    def _rebuild_state(self, stored: Mapping[str, Any] | Encoded) -> Any:
        """The state object of a stored state (the row's, or what the last commit wrote)."""
        data: dict[str, Any] = stored.decode() if isinstance(stored, Encoded) else dict(stored)
        model = self._compiled.state_model
        if model is dict:
            return dict(data)
        try:
            return model.model_validate(data)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise StoredStateError(
                self.id, model.__name__, describe_errors(exc), dict(data)
            ) from None
