"""Child workflows: a step that starts one (``SUB_WORKFLOW``, ``StartSubWorkflowDirective``) and
waits for it, and what the parent does whenever its child's status changes.

Starting is two commits, in this order, and a crash between them cannot split the pair: the
child is created first under the idempotency key ``<parent>:<step>:<attempt>``, then the parent
is committed PENDING_SUB_WORKFLOW with ``blocked_on_child_id``. Running the step again after a
crash finds the child it already created. The child runs at once, in the parent's call, until
it completes, fails or waits (children always go on by themselves).

The durable record that a parent has to hear from its child is the pair of rows itself: the
parent blocked on the child, the child in its new status. :meth:`ChildWorkflows.apply_child`
(the completion entry point for children) reads them and applies the outcome once: a parent
that is not blocked on that child any more ignores it. Whoever drives a child (the parent's
call, a ``next_step`` on the child, a report of its ASYNC step) tells the parent afterwards;
after a crash in between, ``WorkflowBuilder.settle_child(child_id)`` does it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from ruvon._workflow_async import AsyncSteps
from ruvon.definition.compiled import CompiledStep
from ruvon.models import WorkflowStatus, check_transition
from ruvon.observing import Notice
from ruvon.providers.persistence import AuditEvent
from ruvon.providers.services import StartRequest
from ruvon.serialization import Encoded, jsonable
from ruvon.steps import StepOutcome, StepRun

__all__ = ["CHILD_ATTEMPTS_KEY", "ChildWorkflows"]

logger = logging.getLogger("ruvon.workflow")

CHILD_ATTEMPTS_KEY = "sub_workflow_attempts"
"""Workflow metadata: step name -> how many children the step has started."""

ROLLED_BACK_KEY = "rolled_back"
"""Workflow metadata: True once a saga run compensated its steps (it cannot be retried)."""

RESULTS_KEY = "sub_workflow_results"
"""Workflow metadata (and the state field, when the model has one): child id -> outcome."""


class ChildWorkflowFailed(RuntimeError):
    """Why a saga parent rolls back: its child workflow failed."""


_WAITING_FOR_CHILD = frozenset(
    {WorkflowStatus.PENDING_SUB_WORKFLOW, WorkflowStatus.WAITING_CHILD_HUMAN_INPUT}
)
_CHILD_FAILED = frozenset(
    {
        WorkflowStatus.FAILED,
        WorkflowStatus.FAILED_ROLLED_BACK,
        WorkflowStatus.FAILED_CHILD_WORKFLOW,
        WorkflowStatus.FAILED_WORKER_CRASH,
        WorkflowStatus.CANCELLED,
    }
)


class ChildWorkflows(AsyncSteps):
    """Starting a child workflow, and applying its outcome."""

    _parent_drives: bool = False
    """True while this workflow runs as a child inside its parent's call: the parent applies
    the outcome itself, so this one does not tell it."""

    async def _start_child(
        self,
        step: CompiledStep,
        outcome: StepOutcome,
        state: Any,
        state_json: Encoded,
        run: StepRun,
        resuming: WorkflowStatus | None,
    ) -> tuple[dict[str, Any] | None, bool]:
        spec = outcome.spawn
        assert spec is not None
        starter = self._services.starter
        if starter is None:
            raise RuntimeError(
                f"Step '{step.name}' starts a sub-workflow, but this workflow has no starter "
                "(workflows built by WorkflowBuilder have one)"
            )
        attempts = dict(self.metadata.get(CHILD_ATTEMPTS_KEY) or {})
        attempt = int(attempts.get(step.name, 0)) + 1
        request = StartRequest(
            workflow_type=spec.workflow_type,
            initial_data=spec.initial_data,
            idempotency_key=f"{self.id}:{step.name}:{attempt}",
            parent_execution_id=self.id,
            owner_id=spec.owner_id or self.owner_id,
            org_id=self.org_id,
            data_region=spec.data_region or self.data_region,
        )
        try:
            child = await starter.start_workflow_for(request)  # first: a crash after it is safe
        except Exception as exc:  # an unknown type, initial data the child's model rejects
            await self._fail(step, exc, resuming, run.user_input)
            raise
        old_status = self.status
        audit: list[AuditEvent] = []
        metadata = self.metadata
        if resuming is not None:
            metadata = self._end_wait(step, resuming, old_status, run.user_input, audit)
        check_transition(WorkflowStatus.ACTIVE, WorkflowStatus.PENDING_SUB_WORKFLOW)
        audit.append(
            AuditEvent(
                "SUB_WORKFLOW_STARTED",
                step_name=step.name,
                old_status=WorkflowStatus.ACTIVE.value,
                new_status=WorkflowStatus.PENDING_SUB_WORKFLOW.value,
                data={"child_id": child.id, "workflow_type": spec.workflow_type},
            )
        )
        attempts[step.name] = attempt
        notices: list[Notice] = []
        if self._hub.enabled:
            notices.append(
                (
                    "on_child_workflow_started",
                    {
                        "parent_id": self.id,
                        "child_id": child.id,
                        "child_type": spec.workflow_type,
                        "step_name": step.name,
                    },
                )
            )
        await self._commit(
            WorkflowStatus.PENDING_SUB_WORKFLOW,
            state,
            step.index,
            {**metadata, CHILD_ATTEMPTS_KEY: attempts, "waiting_for": step.name},
            audit,
            state_json=state_json,
            progress=self.progress.step_dispatched(step.name, child.id),
            blocked_on_child_id=child.id,
            notices=notices,
        )
        child._parent_drives = True
        try:
            await child.run()
        except Exception as exc:  # recorded on the child; the parent hears of it below
            logger.info("Child workflow %s of %s failed: %s", child.id, self.id, exc)
        finally:
            child._parent_drives = False
        await self._apply_child(child)
        go_on = self.status is WorkflowStatus.ACTIVE and step.definition.automate_next
        return self._last_result if self.status is WorkflowStatus.ACTIVE else None, go_on

    async def apply_child(self, child: Any) -> bool:
        """Apply where the child workflow ``child`` is now: its completion completes the
        waiting step (the result under ``sub_workflow_results[child_id]``) and the run goes
        on; its failure fails this run (FAILED_CHILD_WORKFLOW); its wait makes this run
        WAITING_CHILD_HUMAN_INPUT (naming the waiting workflow and step). Returns False, and
        changes nothing, when this run is not waiting for that child."""
        async with self._lock:
            before = self.status
            index = self.current_step_index
            applied = await self._apply_child(child)
            if applied and self.status is WorkflowStatus.ACTIVE:
                await self._continue_after(self._compiled.steps[index])
        if applied and self.status is not before:
            await self._tell_parent()
        return applied

    async def _continue_after(self, step: CompiledStep) -> None:
        """Run the steps ``automate_next`` chains to ``step``, which just completed."""
        if not step.definition.automate_next:
            return
        while self.status is WorkflowStatus.ACTIVE:
            _, go_on = await self._run_current({}, False)
            if not go_on:
                break

    async def complete_async_step(
        self,
        step_index: int,
        token: str,
        *,
        result: dict[str, Any] | None = None,
        error: BaseException | None = None,
        duration_ms: float | None = None,
    ) -> bool:
        before = self.status
        applied = await super().complete_async_step(
            step_index, token, result=result, error=error, duration_ms=duration_ms
        )
        if applied and self.status is not before:
            await self._tell_parent()
        return applied

    async def _apply_child(self, child: Any) -> bool:
        if self.blocked_on_child_id != child.id or self.status not in _WAITING_FOR_CHILD:
            return False
        steps = self._compiled.steps
        step = steps[self.current_step_index]
        status = child.status
        if status is WorkflowStatus.COMPLETED:
            await self._child_completed(step, child)
        elif status in _CHILD_FAILED:
            stack = self._rollback_stack(step)
            if stack:
                await self._roll_back_for_child(step, child, stack)
                return True
            await self._change_status(
                WorkflowStatus.FAILED_CHILD_WORKFLOW,
                AuditEvent(
                    "SUB_WORKFLOW_FAILED",
                    step_name=step.name,
                    data={"child_id": child.id, "child_status": status.value},
                ),
                metadata={
                    **self.metadata,
                    "failed_child_id": child.id,
                    "failed_child_status": status.value,
                },
                progress=self.progress.step_failed(step.name),
                error_message=f"Child workflow {child.id} ended {status.value}",
            )
        elif status.is_waiting or status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT:
            # The workflow that waits for a person: the child, or whoever it waits for.
            waiting_id = child.metadata.get("waiting_child_id") or child.id
            waiting_step = child.metadata.get("waiting_child_step") or child.current_step_name
            marks = {"waiting_child_id": waiting_id, "waiting_child_step": waiting_step}
            if self.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT and all(
                self.metadata.get(k) == v for k, v in marks.items()
            ):
                return True
            await self._change_status(
                WorkflowStatus.WAITING_CHILD_HUMAN_INPUT,
                AuditEvent("SUB_WORKFLOW_WAITING", step_name=step.name, data=marks),
                metadata={**self.metadata, **marks},
            )
        elif self.status is WorkflowStatus.WAITING_CHILD_HUMAN_INPUT:
            # The child runs again (its wait was answered): so does the wait for it.
            await self._change_status(
                WorkflowStatus.PENDING_SUB_WORKFLOW,
                AuditEvent("SUB_WORKFLOW_RESUMED", step_name=step.name),
                metadata=_without_waiting_marks(self.metadata),
            )
        return True

    async def _roll_back_for_child(
        self, step: CompiledStep, child: Any, stack: list[dict[str, Any]]
    ) -> None:
        """A saga parent whose child failed (the child has compensated itself): compensate this
        run's own completed steps, then end FAILED_CHILD_WORKFLOW (SAGA-06). Such a run is not
        retryable: its steps were undone."""
        status = child.status.value
        error = ChildWorkflowFailed(f"Child workflow {child.id} ended {status}")
        metadata = {
            **self.metadata,
            "failed_child_id": child.id,
            "failed_child_status": status,
            ROLLED_BACK_KEY: True,
        }
        audit = [
            AuditEvent(
                "SUB_WORKFLOW_FAILED",
                step_name=step.name,
                old_status=self.status.value,
                new_status=WorkflowStatus.ACTIVE.value,
                data={"child_id": child.id, "child_status": status},
            )
        ]
        marker = await self._start_rollback(
            step,
            error,
            stack,
            metadata,
            audit,
            [],
            [],
            final_status=WorkflowStatus.FAILED_CHILD_WORKFLOW,
        )
        await self._continue_rollback(marker)

    async def _child_completed(self, step: CompiledStep, child: Any) -> None:
        outcome_of_child = {
            "workflow_type": child.workflow_type,
            "status": child.status.value,
            "state": jsonable(_state_dict(child.state)),
            "final_result": child.last_result,
        }
        results = {**(self.metadata.get(RESULTS_KEY) or {}), child.id: outcome_of_child}
        result: dict[str, Any] = {}
        if _keeps_results(self.state):
            current = (
                self.state.get(RESULTS_KEY)
                if isinstance(self.state, dict)
                else getattr(self.state, RESULTS_KEY, None)
            )
            result[RESULTS_KEY] = {**(current or {}), child.id: outcome_of_child}
        metadata = _without_waiting_marks({**self.metadata, RESULTS_KEY: results})
        outcome = StepOutcome(
            result=result,
            audit=[
                AuditEvent(
                    "SUB_WORKFLOW_COMPLETED",
                    step_name=step.name,
                    old_status=self.status.value,
                    new_status=WorkflowStatus.ACTIVE.value,
                    data={"child_id": child.id, "workflow_type": child.workflow_type},
                )
            ],
        )
        try:
            state, state_json = self._settle(step, result)
            target = self._route(step, outcome, state)
        except Exception as exc:
            await self._fail(step, exc, None, {})
            return
        kept = self.metadata
        self.metadata = metadata  # the commit's base; put back if it fails
        try:
            await self._complete_step(step, outcome, state, state_json, target, None, 0.0, {}, None)
        except Exception:
            self.metadata = kept
            raise

    async def _tell_parent(self) -> None:
        """Tell this run's parent where it is now (unless the parent is driving it)."""
        starter = self._services.starter
        if self.parent_execution_id is None or self._parent_drives or starter is None:
            return
        try:
            await starter.notify_parent(self)
        except Exception:
            # This run's own outcome is committed; the parent hears of it later
            # (WorkflowBuilder.settle_child), so the caller's result is not lost to this.
            logger.exception(
                "Telling parent %s about child %s failed", self.parent_execution_id, self.id
            )


def _state_dict(state: Any) -> Any:
    return state.model_dump(mode="json") if isinstance(state, BaseModel) else dict(state)


def _keeps_results(state: Any) -> bool:
    if isinstance(state, BaseModel):
        model = type(state)
        return RESULTS_KEY in model.model_fields or model.model_config.get("extra") == "allow"
    return isinstance(state, dict)


def _without_waiting_marks(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in metadata.items()
        if key not in ("waiting_child_id", "waiting_child_step")
    }
