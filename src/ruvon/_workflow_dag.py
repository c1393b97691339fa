"""DAG stages: when steps declare ``dependencies``, every ready step that can run on its own
function joins a stage; the stage's functions run at the same time through
``ExecutionProvider.dispatch_parallel_tasks``, their results are merged in declaration
(file) order, and the stage is committed in one call."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ruvon._workflow_hooks import StageMember
from ruvon._workflow_step import StepCycle
from ruvon.dag import ready_steps
from ruvon.definition.compiled import CompiledStep
from ruvon.models import WorkflowStatus, check_transition
from ruvon.observing import Notice
from ruvon.providers.execution import ParallelOutcome, ParallelTask
from ruvon.providers.persistence import AuditEvent, MetricPoint
from ruvon.steps import STEP_RUNNERS, StepRun

__all__ = ["DagStages"]


class DagStages(StepCycle):
    """Running a stage of ready steps at once."""

    @property
    def ready_steps(self) -> list[str]:
        """The steps the next call runs: in DAG mode every ready step (the next stage), else
        the current step (empty once the workflow has ended)."""
        if self._dag is None:
            name = self.current_step_name
            return [name] if name is not None else []
        if self.status.is_terminal:
            return []
        return ready_steps(self._compiled.steps, self._dag, self.progress)

    def _stage(self, step: CompiledStep) -> list[StageMember]:
        """The stage ``step`` belongs to: two or more ready steps that can all run at once or
        be dispatched together (else empty: the step runs on its own)."""
        if self._dag is None:
            return []
        names = ready_steps(self._compiled.steps, self._dag, self.progress)
        if len(names) < 2 or step.name not in names:
            return []
        stage = []
        for name in names:
            member = self._compiled.steps[self._compiled.index_by_name[name]]
            runner = STEP_RUNNERS.get(member.kind)
            if runner is None:
                return []
            call = runner.stage_call(member)
            if call is not None:
                stage.append(StageMember(member, call, dispatched=False))
                continue
            call = runner.stage_dispatch(member)
            if call is None:
                return []
            stage.append(StageMember(member, call, dispatched=True))
        return stage

    async def _run_stage(
        self, stage: list[StageMember], run: StepRun, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, bool]:
        """Run ``stage`` at once, merge in file order, commit once; a failed member fails the
        workflow at that step (nothing of the stage is merged).

        Members that dispatch (ASYNC) are committed as dispatched with the stage, then sent:
        the run waits in PENDING_ASYNC until every one of them has reported (each report is
        applied on its own, by its token), and the next stage starts after the last."""
        running = [member for member in stage if not member.dispatched]
        sent = [member for member in stage if member.dispatched]
        inputs = user_input if run.first_in_call else {}
        by_name = {member.step.name: member.step for member in stage}
        started = time.perf_counter()
        outcomes: list[ParallelOutcome] = []
        if running:
            tasks = [
                ParallelTask(m.step.name, m.call.func, m.call.keyword_arguments(inputs, self.state))
                for m in running
            ]
            outcomes = await self._execution.dispatch_parallel_tasks(
                tasks, self.state, lambda task: run.context(by_name[task.name])
            )
        for outcome in outcomes:
            if outcome.error is not None:
                error = outcome.error
                await self._fail(by_name[outcome.name], error, None, user_input)  # type: ignore[arg-type]
                raise error
        merged: dict[str, Any] = {}
        for outcome in outcomes:
            merged.update(outcome.result or {})
        first_step = stage[0].step
        try:
            state, state_json = self._settle(first_step, merged)
        except Exception as exc:
            await self._fail(first_step, exc, None, user_input)
            raise
        duration_ms = (time.perf_counter() - started) * 1000.0
        progress = self.progress
        audit: list[AuditEvent] = []
        metrics: list[MetricPoint] = []
        for outcome in outcomes:
            result = outcome.result or {}
            progress = progress.step_completed(outcome.name, result)
            audit.append(
                AuditEvent(
                    "STEP_EXECUTED",
                    step_name=outcome.name,
                    data={"result": result, "duration_ms": round(outcome.duration_ms, 3)},
                    duration_ms=outcome.duration_ms,
                )
            )
            metrics.append(
                MetricPoint(
                    "step_duration_ms", outcome.duration_ms, unit="ms", step_name=outcome.name
                )
            )
        if running:  # last_result: what the stage's functions returned, merged
            progress = progress.step_completed(running[-1].step.name, merged)
        tokens = {member.step.name: uuid.uuid4().hex for member in sent}
        for name, token in tokens.items():
            progress = progress.step_dispatched(name, token)
        steps = self._compiled.steps
        metadata = self.metadata
        if sent:
            status = WorkflowStatus.PENDING_ASYNC
            index = sent[0].step.index
            metadata = {**metadata, "waiting_for": sent[0].step.name}
            audit.extend(
                AuditEvent(
                    "STEP_DISPATCHED",
                    step_name=name,
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                    data={"token": token},
                )
                for name, token in tokens.items()
            )
        else:
            assert self._dag is not None
            ready = ready_steps(steps, self._dag, progress)
            index = self._compiled.index_by_name[ready[0]] if ready else len(steps)
            status = WorkflowStatus.COMPLETED if index >= len(steps) else WorkflowStatus.ACTIVE
        check_transition(WorkflowStatus.ACTIVE, status)
        if status is WorkflowStatus.COMPLETED:
            audit.append(
                AuditEvent(
                    "WORKFLOW_COMPLETED",
                    old_status=WorkflowStatus.ACTIVE.value,
                    new_status=status.value,
                )
            )
        metrics.append(MetricPoint("stage_duration_ms", duration_ms, unit="ms"))
        notice: Notice = (
            "on_stage_completed",
            {
                "workflow_id": self.id,
                "step_names": [member.step.name for member in running],
                "dispatched": list(tokens),
                "result": merged,
                "duration_ms": duration_ms,
            },
        )
        chained = all(member.step.definition.automate_next for member in stage)
        try:
            await self._commit(
                status,
                state,
                index,
                metadata,
                audit,
                metrics=metrics,
                completed=status is WorkflowStatus.COMPLETED,
                state_json=state_json,
                progress=progress,
                notices=[notice],
                hold=status is WorkflowStatus.ACTIVE and chained,
            )
        except Exception:
            self.state = self._rebuild_state(self._committed_state)
            raise
        for member in sent:
            # Committed first: a report always finds the row with its token.
            if self.status is not WorkflowStatus.PENDING_ASYNC:
                break  # an inline sibling failed the run: the others are void
            token = tokens[member.step.name]
            await self._send(member.step, member.call, token, run, state, state_json)
        return merged, self.status is WorkflowStatus.ACTIVE and chained
