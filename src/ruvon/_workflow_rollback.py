"""A saga's rollback, committed step by step so that a crash cannot lose or repeat it.

1. **Started**: one commit records the step's failure and that the run is rolling back
   (``metadata["rollback"]``, see :class:`ruvon.saga.Rollback`): the status stays ACTIVE, the
   cursor stays on the failed step, ``completed_steps_stack`` holds exactly the compensations
   still to run, and the audit log gets ``STEP_FAILED`` and ``COMPENSATION_STARTED``.
2. **Each compensation**, newest first, is committed as it completes: the state after it, its
   stack entry popped, its ``COMPENSATION_EXECUTED``/``COMPENSATION_FAILED`` audit entry and its
   ``compensation_log`` row, in one transaction. A compensation interrupted before that commit
   runs again when the rollback resumes (at least once, like a step); one whose commit landed
   never runs again.
3. **Ended**: one commit moves the run to FAILED_ROLLED_BACK with ``COMPENSATION_COMPLETED`` and
   ``WORKFLOW_FAILED`` and removes the marker.

A run found rolling back (another process died during step 2, or a commit failed) is finished
by :meth:`RollbackPath._resume_rollback` (``Workflow.resume_rollback()``, or ``next_step()`` /
``run()`` on it), which first commits ``COMPENSATION_RESUMED``: of two processes resuming the
same run from the same version, only one goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ruvon._workflow_core import WorkflowCore
from ruvon.definition.compiled import CompiledStep
from ruvon.errors import WorkflowStateError
from ruvon.models import WorkflowStatus, check_transition
from ruvon.observing import Notice
from ruvon.providers.persistence import AuditEvent, LogEntry
from ruvon.saga import (
    ROLLBACK_KEY,
    Rollback,
    compensation_started,
    rollback_stack,
    run_compensation,
)
from ruvon.steps import StepRun

__all__ = ["RollbackPath"]

logger = logging.getLogger("ruvon.saga")

_ACTIVE = WorkflowStatus.ACTIVE


class RollbackPath(WorkflowCore):
    """Starting, running, resuming and ending a saga's rollback."""

    @property
    def rolling_back(self) -> bool:
        """True while the run's rollback has started and not ended (it may have been
        interrupted: :meth:`Workflow.resume_rollback` finishes it)."""
        return self.status is _ACTIVE and ROLLBACK_KEY in self.metadata

    def _rollback_stack(self, failed: CompiledStep) -> list[dict[str, Any]]:
        """What a rollback after ``failed`` would undo (empty: nothing, or not in saga mode)."""
        if not self.saga_mode:
            return []
        return rollback_stack(self._compiled, self.completed_steps_stack, failed)

    async def _start_rollback(
        self,
        step: CompiledStep,
        error: BaseException,
        stack: list[dict[str, Any]],
        metadata: dict[str, Any],
        audit: list[AuditEvent],
        logs: Sequence[LogEntry],
        notices: Sequence[Notice],
        final_status: WorkflowStatus = WorkflowStatus.FAILED_ROLLED_BACK,
    ) -> Rollback:
        """Commit the failure of ``step`` and the start of the rollback of ``stack``
        (``audit``, ``logs`` and ``notices``: the failure's own entries); return the marker."""
        marker = Rollback(step.name, str(error), type(error).__name__, final_status)
        audit.append(
            AuditEvent("COMPENSATION_STARTED", data={"error": str(error), "steps": len(stack)})
        )
        if self._hub.enabled:
            top = self._compiled.steps[int(stack[-1]["step_index"])]
            notices = [*notices, compensation_started(self.id, top)]
        await self._commit(
            _ACTIVE,
            self.state,
            step.index,
            {**metadata, ROLLBACK_KEY: marker.to_json()},
            audit,
            logs=logs,
            stack=stack,
            error_message=marker.message,
            progress=self.progress.step_failed(step.name),
            notices=notices,
            since=_ACTIVE,
            hold=True,  # the compensations run next, in this call
        )
        return marker

    async def _resume_rollback(self) -> WorkflowStatus:
        """Finish a rollback that another process (or a failed commit) left unfinished."""
        marker = Rollback.of(self.metadata)
        if marker is None or self.status is not _ACTIVE:
            raise WorkflowStateError(
                f"Workflow {self.id} is {self.status.value} and not rolling back; there is "
                "no rollback to resume."
            )
        await self._claim_lease()  # before any compensation runs
        stack = self.completed_steps_stack
        notices: list[Notice] = []
        if stack and self._hub.enabled:
            notices.append(compensation_started(self.id, self._stacked(stack[-1])))
        await self._guarded(
            self._commit(
                _ACTIVE,
                self.state,
                self.current_step_index,
                self.metadata,
                [AuditEvent("COMPENSATION_RESUMED", data={"remaining": len(stack)})],
                error_message=self.error_message,
                notices=notices,
                hold=True,
            )
        )
        return await self._continue_rollback(marker)

    async def _continue_rollback(self, marker: Rollback) -> WorkflowStatus:
        """Run and commit the compensations left on the stack, then end the rollback; return
        the final status. A commit that fails leaves this object unusable (reload the run to
        resume) and is raised."""
        while self.completed_steps_stack:
            await self._guarded(self._compensate_top())
        final = marker.final_status
        check_transition(_ACTIVE, final)
        failed = marker.step
        audit = [
            AuditEvent("COMPENSATION_COMPLETED"),
            AuditEvent(
                "WORKFLOW_FAILED",
                step_name=failed,
                old_status=_ACTIVE.value,
                new_status=final.value,
                data={"status": final.value, "error": marker.error},
            ),
        ]
        notices: list[Notice] = []
        if self._hub.enabled:
            notices.append(
                (
                    "on_workflow_rolled_back",
                    {
                        "workflow_id": self.id,
                        "workflow_type": self.workflow_type,
                        "step_name": failed,
                        "error_message": marker.message,
                        "current_state": self.state,
                    },
                )
            )
        await self._guarded(
            self._commit(
                final,
                self.state,
                self.current_step_index,
                {k: v for k, v in self.metadata.items() if k != ROLLBACK_KEY},
                audit,
                error_message=marker.message,
                notices=notices,
                status_step=failed,
            )
        )
        logger.info("Workflow %s rolled back after step %s failed", self.id, failed)
        return final

    async def _compensate_top(self) -> None:
        """Run the compensation on top of the stack and commit its outcome with the entry
        popped."""
        stack = self.completed_steps_stack
        step = self._stacked(stack[-1])
        before = self._committed_state
        outcome = await run_compensation(self._compiled, step, self.state, self._run_for(step))
        if outcome.error is not None:
            # Whatever the failed compensation changed in place is discarded.
            self.state = self._rebuild_state(before)
        audit, logs, entry = outcome.entries(before, self._actor)
        rest = stack[:-1]
        notices: list[Notice] = []
        if self._hub.enabled:
            notices = outcome.notices(self.id)
            if rest:
                notices.append(compensation_started(self.id, self._stacked(rest[-1])))
        await self._commit(
            _ACTIVE,
            outcome.state if outcome.error is None else self.state,
            self.current_step_index,
            self.metadata,
            audit,
            logs=logs,
            stack=rest,
            error_message=self.error_message,
            state_json=outcome.state_json,
            notices=notices,
            compensations=[entry],
            hold=True,
        )

    async def _guarded(self, commit: Any) -> None:
        """Await a commit of the rollback; if it fails, this object may not drive the run any
        more (its compensation may have run without its record): reload it to resume."""
        try:
            await commit
        except Exception as exc:
            self._broken = exc
            raise

    def _stacked(self, entry: dict[str, Any]) -> CompiledStep:
        return self._compiled.steps[int(entry["step_index"])]

    def _run_for(self, step: CompiledStep) -> StepRun:
        """What a compensation of ``step`` runs with (no user input, no cursor)."""
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
