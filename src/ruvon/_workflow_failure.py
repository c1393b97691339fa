"""How a step fails: the committed state stands, the failure is committed (in saga mode with a
rollback committed step by step, see ``_workflow_rollback``), and the step's own exception is
re-raised with the workflow's facts attached."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ruvon import observing
from ruvon._workflow_rollback import RollbackPath
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

__all__ = ["FailurePath"]

logger = logging.getLogger("ruvon.workflow")


class FailurePath(RollbackPath):
    """Recording a failed step."""

    async def _fail(
        self,
        step: CompiledStep,
        error: Exception,
        resuming: WorkflowStatus | None,
        user_input: Mapping[str, Any],
    ) -> None:
        """Record a failed step: FAILED, or in saga mode with something to undo, a rollback
        that ends FAILED_ROLLED_BACK."""
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
        logs = [
            LogEntry("ERROR", f"Step failed: {message}", step_name=step.name),
        ]
        notices = (
            self._failure_notices(step, self.state, resuming, old_status, user_input, message)
            if self._hub.enabled
            else []
        )
        # Nothing to undo, nothing final: the run is FAILED and can be retried.
        stack = self._rollback_stack(step)
        status = WorkflowStatus.FAILED_ROLLED_BACK if stack else WorkflowStatus.FAILED
        check_transition(WorkflowStatus.ACTIVE, status)
        started = False
        try:
            if stack:
                marker = await self._start_rollback(
                    step, error, stack, metadata, audit, logs, notices
                )
                started = True
                status = await self._continue_rollback(marker)
            else:
                await self._commit_failure(step, error, message, metadata, audit, logs, notices)
        except Exception as commit_error:
            # The step's error stays the one raised; the lost record is attached to it, and
            # this object refuses to run the step (and its compensations) again.
            self._broken = commit_error
            if started:
                note = (
                    f"The rollback after step '{step.name}' of workflow {self.id} was "
                    f"interrupted ({type(commit_error).__name__}: {commit_error}); the stored "
                    "run is still rolling back: load it again and call resume_rollback()."
                )
            else:
                note = (
                    f"Recording this failure of step '{step.name}' of workflow {self.id} failed "
                    f"({type(commit_error).__name__}: {commit_error}); the stored run is "
                    "unchanged."
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

    async def _commit_failure(
        self,
        step: CompiledStep,
        error: Exception,
        message: str,
        metadata: dict[str, Any],
        audit: list[AuditEvent],
        logs: list[LogEntry],
        notices: list[Notice],
    ) -> None:
        """Commit a failure without rollback: FAILED, retryable."""
        status = WorkflowStatus.FAILED
        audit.append(
            AuditEvent(
                "WORKFLOW_FAILED",
                step_name=step.name,
                old_status=WorkflowStatus.ACTIVE.value,
                new_status=status.value,
                data={"status": status.value, "error": str(error)},
            )
        )
        await self._commit(
            status,
            self.state,
            step.index,
            metadata,
            audit,
            logs=logs,
            error_message=message,
            progress=self.progress.step_failed(step.name),
            notices=notices,
            since=WorkflowStatus.ACTIVE,
        )

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
