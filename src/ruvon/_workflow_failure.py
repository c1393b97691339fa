"""How a step fails: the committed state stands, the failure (and, in saga mode, the
rollback) is committed in one call, and the step's own exception is re-raised with the
workflow's facts attached."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ruvon import observing
from ruvon._workflow_core import WorkflowCore
from ruvon.definition.compiled import CompiledStep
from ruvon.models import (
    WorkflowStatus,
    check_transition,
)
from ruvon.observing import Notice
from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
)
from ruvon.saga import compensate
from ruvon.steps import StepRun

__all__ = ["FailurePath"]

logger = logging.getLogger("ruvon.workflow")


class FailurePath(WorkflowCore):
    """Recording a failed step."""

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
                progress=self.progress.step_failed(step.name),
                notices=self._failure_notices(
                    step, state, resuming, old_status, user_input, message
                )
                if self._hub.enabled
                else (),
                since=WorkflowStatus.ACTIVE,
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

    def _failure_notices(
        self,
        step: CompiledStep,
        state: Any,
        resuming: WorkflowStatus | None,
        old_status: WorkflowStatus,
        user_input: Mapping[str, Any],
        message: str,
    ) -> list[Notice]:
        """The observer events of a committed step failure: the wait it ended, the failure."""
        notices: list[Notice] = []
        if resuming is not None:
            notices.extend(observing.resumed(self.id, step.name, old_status, user_input))
        notices.append(
            (
                "on_step_failed",
                {
                    "workflow_id": self.id,
                    "step_name": step.name,
                    "step_index": step.index,
                    "error_message": message,
                    "current_state": state,
                },
            )
        )
        return notices

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
            metadata=self.metadata,
            services=self._services,
        )
