"""``Workflow``: one running instance. It picks the runner of the current step, merges and routes
the outcome, and commits result, state, status, pointer and audit entry in one call."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from ruvon.definition.compiled import CompiledStep, CompiledWorkflow
from ruvon.definition.schema import HumanInLoopStep
from ruvon.definition.validate import END
from ruvon.errors import (
    InvalidInputError,
    JumpTargetError,
    NoRouteMatchedError,
    StateValidationError,
    StepNotImplementedError,
    StoredStateError,
    WorkflowStateError,
)
from ruvon.models import (
    RETRYABLE_STATUSES,
    TERMINAL_STATUSES,
    WorkflowStatus,
    WorkflowStep,
    check_transition,
    normalize_status,
)
from ruvon.observing import ObserverHub
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    PersistenceProvider,
    WorkflowRecord,
    WorkflowUpdate,
)
from ruvon.providers.template_engine import TemplateEngine
from ruvon.saga import compensate
from ruvon.serialization import jsonable
from ruvon.state import (
    check_storable,
    describe_errors,
    dump_state,
    merge_state,
    settle_state,
    unmerged_keys,
)
from ruvon.steps import STEP_RUNNERS, StepOutcome, StepRun
from ruvon.steps.routing import choose_route

__all__ = ["Workflow"]

logger = logging.getLogger("ruvon.workflow")

_RUNNABLE = frozenset(
    {
        WorkflowStatus.ACTIVE,
        WorkflowStatus.PAUSED,
        WorkflowStatus.WAITING_HUMAN,
        WorkflowStatus.WAITING_HUMAN_INPUT,
    }
)


_warned_unmerged: set[tuple[str, str, str]] = set()
"""(workflow type, step, key) already reported as left out of the state: warned once."""


def _audit_input(validated: BaseModel | None, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The input of a call as the audit log keeps it. With an ``input_model`` it is the model's
    JSON dump, so ``SecretStr``/``SecretBytes`` fields are masked; without one, the values as
    given (anything the codec cannot store is kept as its ``repr``)."""
    if validated is not None:
        return validated.model_dump(mode="json")
    recorded: dict[str, Any] = {}
    for key, value in user_input.items():
        try:
            recorded[key] = jsonable(value)
        except TypeError:
            recorded[key] = repr(value)
    return recorded


class _Done:
    """An awaitable that does nothing: lets ``enable_saga_mode()`` be awaited or not."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


class Workflow:
    """One workflow instance: its state, status and position, and the providers it runs with.

    Build instances with ``WorkflowBuilder.create_workflow`` / ``load_workflow``, or directly
    from a stored record with :meth:`from_record`.
    """

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
    ) -> None:
        if persistence_provider is None or execution_provider is None:
            raise ValueError("Workflow needs a persistence_provider and an execution_provider")
        self._compiled = compiled
        self._persistence = persistence_provider
        self._execution = execution_provider
        self._evaluator = expression_evaluator
        self._templates = template_engine
        self._observer = workflow_observer
        self._hub = ObserverHub(workflow_observer)
        self._lock = asyncio.Lock()
        self._last_result: dict[str, Any] | None = None
        self._actor: str | None = None
        self._broken: BaseException | None = None
        """Why this object may not drive the run any more (its state is unreadable, or the
        record of a failure could not be committed)."""

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
        self._committed_state: dict[str, Any] = record.state
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
    ) -> Workflow:
        """Rebuild a workflow from its stored record and its compiled snapshot.

        Raises :class:`StoredStateError` if the stored state no longer validates; with
        ``validate_state=False`` the workflow is built anyway, with the raw stored dict as
        ``state``, and only :meth:`cancel` is allowed on it."""
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
        )

    # -- read-only views -------------------------------------------------------------------

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
        entry the call writes, next to the input values.
        """
        async with self._lock:
            self._require_runnable()
            data = dict(user_input or {})
            first = True
            result: dict[str, Any] = {}
            self._actor = actor
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
            if self.status not in _RUNNABLE:
                raise WorkflowStateError(
                    f"Workflow {self.id} is {self.status.value}; it cannot jump to a step."
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
            if self.status is WorkflowStatus.FAILED_ROLLED_BACK:
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
            await self._change_status(WorkflowStatus.ACTIVE, audit, index=index, clear_error=True)

    # -- one step --------------------------------------------------------------------------

    def _rolled_back_message(self, action: str) -> str:
        return (
            f"Workflow {self.id} is FAILED_ROLLED_BACK and cannot be {action}: its completed "
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
        if self.status not in _RUNNABLE:
            raise WorkflowStateError(
                f"Workflow {self.id} is {self.status.value}; next_step() needs an ACTIVE, "
                "PAUSED or WAITING_HUMAN workflow."
            )

    async def _run_current(
        self, user_input: dict[str, Any], first: bool
    ) -> tuple[dict[str, Any] | None, bool]:
        """Run the current step; return its result (None if it only started waiting) and
        whether ``automate_next`` goes on to the next one."""
        steps = self._compiled.steps
        index = self.current_step_index
        resuming = normalize_status(self.status) if first and self.status.is_waiting else None
        if index >= len(steps):
            # A pause in the last step: resuming it completes the workflow.
            await self._finish_without_step(resuming)
            return {}, False
        step = steps[index]
        validated = self._validate_input(step, user_input, first, resuming)
        logger.info("Starting step: %s", step.name)
        run = StepRun(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            state=self.state,
            user_input=user_input,
            first_in_call=first,
            resuming=resuming,
            validated_input=validated,
            previous_step_result=self._last_result,
            parent_workflow_id=self.parent_execution_id,
            execution=self._execution,
            persistence=self._persistence,
            evaluator=self._evaluator,
            templates=self._templates,
        )
        started = time.perf_counter()
        try:
            runner = STEP_RUNNERS.get(step.kind)
            if runner is None:
                raise StepNotImplementedError(step.name, step.kind.value)
            outcome = await runner.run(step, run)
            state, state_dict = self._settle(step, outcome.result)
            target = self._route(step, outcome, state)
        except Exception as exc:
            await self._fail(step, exc, resuming, user_input)
            raise
        duration_ms = (time.perf_counter() - started) * 1000.0
        recorded_input = _audit_input(validated, user_input) if first and user_input else None
        await self._complete_step(
            step,
            outcome,
            state,
            state_dict,
            target,
            resuming,
            duration_ms,
            user_input,
            recorded_input,
        )
        go_on = self.status is WorkflowStatus.ACTIVE and step.definition.automate_next
        return (outcome.result if outcome.completes_step else None), go_on

    def _settle(self, step: CompiledStep, result: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The state after ``step`` returned ``result``, validated, with its JSON form.

        Fails the step (before anything is committed) if the result cannot be stored, if the
        merged state does not validate — in-place changes included — or if the state cannot
        be stored. Result keys the model ignores are reported once per step and key.
        """
        model = self.state_model
        try:
            if result:
                check_storable(step.name, result)
                state = merge_state(self.state, result, model)
                if model is not dict:
                    self._warn_unmerged(step, result)
            elif model is dict:
                state = self.state
            else:
                # Nothing returned, but the step may have changed the state in place.
                state = merge_state(self.state, {}, model)
        except ValidationError as exc:
            raise StateValidationError(
                describe_errors(exc), model=model.__name__, step_name=step.name
            ) from None
        return settle_state(state, model, step.name)

    def _warn_unmerged(self, step: CompiledStep, result: Mapping[str, Any]) -> None:
        for key in unmerged_keys(result, self.state_model):
            seen = (self.workflow_type, step.name, key)
            if seen in _warned_unmerged:
                continue
            _warned_unmerged.add(seen)
            logger.warning(
                "Step '%s' of %s returned key '%s', which %s does not have: it is kept in the "
                "step's result (returned, audited, previous_step_result) but not in the state",
                step.name,
                self.workflow_type,
                key,
                self.state_model.__name__,
            )

    def _validate_input(
        self,
        step: CompiledStep,
        user_input: Mapping[str, Any],
        first: bool,
        resuming: WorkflowStatus | None,
    ) -> BaseModel | None:
        if not first:
            return None
        definition = step.definition
        if isinstance(definition, HumanInLoopStep) and not (
            resuming is WorkflowStatus.WAITING_HUMAN or (user_input and not definition.always_pause)
        ):
            return None  # the step will wait; its input is checked when it arrives
        # ``required_input`` holds with or without an input_model.
        missing = [key for key in definition.required_input if key not in user_input]
        if missing:
            raise InvalidInputError(step.name, f"missing required input {missing}")
        if step.input_model is None:
            return None
        try:
            return step.input_model.model_validate(dict(user_input))
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidInputError(step.name, detail) from None

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

    def _successor(self, step: CompiledStep) -> int:
        """Where the workflow goes after ``step`` completes without a jump: its ``next:``
        (END is past the last step), else the following step in the file."""
        follow = step.definition.next
        if follow is None:
            return step.index + 1
        if follow == END:
            return len(self._compiled.steps)
        return self._compiled.index_by_name[follow]

    def _route(self, step: CompiledStep, outcome: StepOutcome, state: Any) -> int | None:
        """The index to continue at if the step jumps, else None."""
        target = outcome.jump_to
        if target is None and outcome.wait is None:
            target = choose_route(outcome.routes, state, self._evaluator)
            if target is None and outcome.routes_required:
                raise NoRouteMatchedError(
                    f"No route of DECISION step '{step.name}' matched and it has no default."
                )
        if target is None:
            return None
        index = self._compiled.step_index(target)
        if index is None:
            raise JumpTargetError(target)
        return index

    async def _complete_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_dict: dict[str, Any],
        target: int | None,
        resuming: WorkflowStatus | None,
        duration_ms: float,
        user_input: Mapping[str, Any],
        recorded_input: dict[str, Any] | None,
    ) -> None:
        steps = self._compiled.steps
        old_status = self.status
        metadata = self.metadata
        audit: list[AuditEvent] = []
        metrics: list[MetricPoint] = []
        if resuming is not None:
            metadata = self._end_wait(step, resuming, old_status, user_input, audit)

        if outcome.wait is not None:
            status = outcome.wait
            # A paused step is done: resuming goes where it leads. A waiting human step is not.
            index = self._successor(step) if outcome.completes_step else step.index
            metadata = {**metadata, "waiting_for": outcome.waiting_for}
        else:
            status = WorkflowStatus.ACTIVE
            index = self._successor(step) if target is None else target
            if target is not None and target > step.index + 1:
                skipped = [s.name for s in steps[step.index + 1 : target]]
                previous = metadata.get("skipped_steps", [])
                metadata = {**metadata, "skipped_steps": [*previous, *skipped]}
            if index >= len(steps):
                status = WorkflowStatus.COMPLETED
        check_transition(WorkflowStatus.ACTIVE, status)

        if outcome.completes_step:
            data: dict[str, Any] = {"result": outcome.result, "duration_ms": round(duration_ms, 3)}
            if target is not None:
                data["jumped_to"] = steps[target].name
            if recorded_input is not None:
                data["input"] = recorded_input
            audit.append(
                AuditEvent(
                    "STEP_EXECUTED",
                    step_name=step.name,
                    data=data,
                    duration_ms=duration_ms,
                    user_id=self._actor,
                )
            )
            metrics.append(
                MetricPoint("step_duration_ms", duration_ms, unit="ms", step_name=step.name)
            )
        if status.is_waiting:
            audit.append(
                AuditEvent(
                    "WORKFLOW_PAUSED",
                    step_name=step.name,
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                    data={"waiting_for": outcome.waiting_for},
                    user_id=self._actor,
                )
            )
        elif status is WorkflowStatus.COMPLETED:
            audit.append(
                AuditEvent(
                    "WORKFLOW_COMPLETED",
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                )
            )
        stack = self.completed_steps_stack
        if self.saga_mode and outcome.completes_step and step.compensate is not None:
            stack = [*stack, {"step_index": step.index, "step_name": step.name}]

        try:
            await self._commit(
                status,
                state,
                index,
                metadata,
                audit,
                metrics=metrics,
                stack=stack,
                completed=status is WorkflowStatus.COMPLETED,
                state_dict=state_dict,
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            raise
        if outcome.completes_step:
            self._last_result = outcome.result
        await self._notify_step(
            step, outcome, old_status, resuming, target, duration_ms, user_input
        )

    async def _notify_step(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        old_status: WorkflowStatus,
        resuming: WorkflowStatus | None,
        target: int | None,
        duration_ms: float,
        user_input: Mapping[str, Any],
    ) -> None:
        hub = self._hub
        if not hub.enabled:
            return
        if resuming is not None:
            await hub.resumed(self.id, step.name, old_status, user_input)
            old_status = WorkflowStatus.ACTIVE
        if outcome.completes_step:
            label = "PAUSED" if outcome.wait else ("JUMPED" if target is not None else "COMPLETED")
            await hub.step_executed(
                self.id, step.name, step.index, label, outcome.result, self.state, duration_ms
            )
        if self.status is not old_status:
            # A paused step has already advanced the pointer: name the step that paused.
            await self._notify_status(old_status, step.name if outcome.wait else None)

    async def _notify_status(
        self, old_status: WorkflowStatus, step_name: str | None = None
    ) -> None:
        await self._hub.status_changed(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            old_status=old_status,
            new_status=self.status,
            current_step_name=step_name or self.current_step_name,
            last_result=self._last_result,
            state=self.state,
            error_message=self.error_message,
        )

    async def _finish_without_step(self, resuming: WorkflowStatus | None) -> None:
        old = self.status
        if resuming is not None:
            check_transition(resuming, WorkflowStatus.ACTIVE)
        audit = [AuditEvent("WORKFLOW_COMPLETED", old_status=old.value, new_status="COMPLETED")]
        await self._commit(
            WorkflowStatus.COMPLETED,
            self.state,
            self.current_step_index,
            self.metadata,
            audit,
            completed=True,
        )
        await self._notify_status(old)

    async def _fail(
        self,
        step: CompiledStep,
        error: Exception,
        resuming: WorkflowStatus | None,
        user_input: Mapping[str, Any],
    ) -> None:
        """Record a failed step: FAILED (or, in saga mode, compensate and FAILED_ROLLED_BACK)."""
        old_status = self.status
        message = f"{type(error).__name__}: {error}"
        logger.error("Step failed: %s (workflow %s, step %s)", message, self.id, step.name)
        # Whatever the step did to the state in place is discarded: the committed state stands.
        self.state = self._rebuild_state(self._committed_state)
        audit: list[AuditEvent] = []
        metadata = self.metadata
        # The wait ends (waiting -> ACTIVE) before the step fails (ACTIVE -> FAILED).
        if resuming is not None:
            metadata = self._end_wait(step, resuming, old_status, user_input, audit)
        audit.append(
            AuditEvent(
                "STEP_FAILED",
                step_name=step.name,
                data={"error": str(error), "error_type": type(error).__name__},
            )
        )
        logs = [LogEntry("ERROR", f"Step failed: {message}", step_name=step.name)]
        state = self.state
        stack = self.completed_steps_stack
        status = WorkflowStatus.FAILED
        if self.saga_mode:
            state, stack, entries, compensated = await compensate(
                self._compiled, state, stack, self._run_for_compensation(step), error
            )
            audit.extend(entries)
            # Nothing undone, nothing final: the run stays FAILED and can be retried.
            if compensated:
                status = WorkflowStatus.FAILED_ROLLED_BACK
        check_transition(WorkflowStatus.ACTIVE, status)
        audit.append(
            AuditEvent(
                "WORKFLOW_FAILED",
                step_name=step.name,
                old_status=WorkflowStatus.ACTIVE.value,
                new_status=status.value,
                data={"status": status.value, "error": str(error)},
            )
        )
        try:
            await self._commit(
                status,
                state,
                step.index,
                metadata,
                audit,
                logs=logs,
                stack=stack,
                error_message=message,
            )
        except Exception as commit_error:
            # The step's error stays the one raised; the lost record is attached to it, and
            # this object refuses to run the step (and its compensations) again.
            self._broken = commit_error
            note = (
                f"Recording this failure of step '{step.name}' of workflow {self.id} failed "
                f"({type(commit_error).__name__}: {commit_error}); the stored run is unchanged."
            )
            logger.error(note)
            add_note = getattr(error, "add_note", None)  # Python 3.11+
            if callable(add_note):
                add_note(note)
            with contextlib.suppress(AttributeError):
                setattr(error, "commit_error", commit_error)  # noqa: B010
            return
        for name, value in (
            ("workflow_id", self.id),
            ("step_name", step.name),
            ("workflow_status", status.value),
        ):
            with contextlib.suppress(AttributeError):
                setattr(error, name, value)
        if resuming is not None:
            await self._hub.resumed(self.id, step.name, old_status, user_input)
        await self._hub.emit(
            "on_step_failed",
            workflow_id=self.id,
            step_name=step.name,
            step_index=step.index,
            error_message=message,
            current_state=self.state,
        )
        await self._notify_status(WorkflowStatus.ACTIVE)

    def _run_for_compensation(self, failed: CompiledStep) -> StepRun:
        return StepRun(
            workflow_id=self.id,
            workflow_type=self.workflow_type,
            state=self.state,
            user_input={},
            first_in_call=False,
            resuming=None,
            validated_input=None,
            previous_step_result=self._last_result,
            parent_workflow_id=self.parent_execution_id,
            execution=self._execution,
            persistence=self._persistence,
            evaluator=self._evaluator,
            templates=self._templates,
        )

    # -- committing ------------------------------------------------------------------------

    async def _change_status(
        self,
        status: WorkflowStatus,
        audit: AuditEvent,
        *,
        index: int | None = None,
        metadata: dict[str, Any] | None = None,
        completed: bool = False,
        clear_error: bool = False,
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
            error_message=None if clear_error else self.error_message,
        )
        if status is not old:
            await self._notify_status(old)

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
        state_dict: dict[str, Any] | None = None,
    ) -> None:
        """Write the new position in one provider call; update this object only if it succeeded.

        ``state_dict`` is the JSON form of ``state`` when the caller has already made it."""
        steps = self._compiled.steps
        if state_dict is None:
            state_dict = dump_state(state)
        if self._actor is not None:
            actor = self._actor
            audit = [e if e.user_id else dataclasses.replace(e, user_id=actor) for e in audit]
        stack = self.completed_steps_stack if stack is None else stack
        completed_at = datetime.now(timezone.utc) if completed else self.completed_at
        update = WorkflowUpdate(
            workflow_id=self.id,
            status=status.value,
            state=state_dict,
            current_step=steps[index].name if index < len(steps) else None,
            current_step_index=index,
            metadata=metadata,
            completed_steps_stack=stack,
            saga_mode=self.saga_mode,
            blocked_on_child_id=self.blocked_on_child_id,
            error_message=error_message,
            completed_at=completed_at,
        )
        self.version = await self._persistence.commit_workflow(
            update, expected_version=self.version, audit=audit, metrics=metrics, logs=logs
        )
        self.status = status
        self.state = state
        self._committed_state = state_dict
        self.current_step_index = index
        self.metadata = metadata
        self.completed_steps_stack = stack
        self.error_message = error_message
        self.completed_at = completed_at

    def _validated_state(self) -> Any:
        if isinstance(self.state, BaseModel):
            model = type(self.state)
            try:
                return model.model_validate(self.state.model_dump(warnings=False))
            except ValidationError as exc:
                raise StateValidationError(describe_errors(exc), model=model.__name__) from None
        return dict(self.state)

    def _rebuild_state(self, data: dict[str, Any]) -> Any:
        model = self._compiled.state_model
        if model is dict:
            return dict(data)
        try:
            return model.model_validate(data)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise StoredStateError(
                self.id, model.__name__, describe_errors(exc), dict(data)
            ) from None
