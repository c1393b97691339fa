"""PARALLEL steps: run several tasks through ``ExecutionProvider.dispatch_parallel_tasks`` and
merge their results into one step result.

The tasks are either declared (``tasks``) or one per item of a list in the state
(``iterate_over`` + ``task_function``, named ``<Step>_<i>``, the item passed as the keyword
argument ``item_var_name`` and as ``context.loop_item``). Each task gets its own copy of the
state and its own :class:`~ruvon.models.StepContext` (``step_name`` is the task's name). The
results of the tasks that succeeded are merged in declared order (``steps.merging``), or by
``merge_function_path``; a task that failed fails the step (:class:`ParallelExecutionError`,
nothing merged) unless ``allow_partial_success`` records it instead.

With ``batch_size`` the tasks run in batches: every batch but the last is returned as a part
of the step (``StepOutcome.cursor = {"next": <index of the next task>}``), which the engine
merges and commits before the next batch starts, so a crash or a retry resumes at the batch in
progress.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.definition.loader import import_callable
from ruvon.definition.schema import ParallelStep
from ruvon.errors import ParallelExecutionError
from ruvon.models import MergeStrategy, StepContext
from ruvon.providers.execution import (
    ParallelOutcome,
    ParallelTask,
    isolated_state,
    step_result,
)
from ruvon.providers.persistence import AuditEvent, MetricPoint
from ruvon.steps.base import (
    RunnerBase,
    StepOutcome,
    StepRun,
    fast_context,
    resolve_list,
    with_retries,
)
from ruvon.steps.merging import deep_into_state, merge_task_results

__all__ = ["ParallelRunner"]

logger = logging.getLogger("ruvon.steps")

_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Batch:
    """The tasks one run of the step dispatches, and where the step goes on after them."""

    tasks: list[ParallelTask]
    loop: dict[str, tuple[Any, int]]
    """Fan-out tasks: task name -> (item, index), for the task's context."""
    cursor: dict[str, int] | None
    """``{"next": i}`` when tasks are left for later batches; ``None`` for the last batch."""


def _start(step_name: str, cursor: Any) -> int:
    """The index of the first task of this run, from the committed cursor."""
    if cursor is None:
        return 0
    start = cursor.get("next") if isinstance(cursor, Mapping) else None
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError(
            f"PARALLEL step '{step_name}': stored progress {cursor!r} is not {{'next': <index>}}"
        )
    return start


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _batch(step: CompiledStep, definition: ParallelStep, run: StepRun) -> _Batch:
    """The tasks of this run of the step: all of them, or the batch the cursor points at."""
    start = _start(step.name, run.cursor)
    if definition.iterate_over:
        items = resolve_list("PARALLEL", step.name, definition.iterate_over, run.state)
        total = len(items)
    else:
        total = len(definition.tasks)
    stop = total if not definition.batch_size else min(start + definition.batch_size, total)
    cursor = {"next": stop} if stop < total else None
    tasks: list[ParallelTask] = []
    loop: dict[str, tuple[Any, int]] = {}
    if definition.iterate_over:
        assert definition.task_function is not None  # the schema requires it
        spec = _spec(definition.task_function)
        shared = spec.keyword_arguments(run.user_input, run.state)
        takes_item = spec.accepts_any_keyword or definition.item_var_name in spec.keyword_names
        for index in range(start, stop):
            name = f"{step.name}_{index}"
            item = copy.deepcopy(items[index])  # a task cannot change the state through it
            kwargs = copy.deepcopy(shared)
            if takes_item:
                kwargs[definition.item_var_name] = item
            tasks.append(ParallelTask(name, spec.func, kwargs))
            loop[name] = (item, index)
    else:
        for declared in definition.tasks[start:stop]:
            spec = _spec(declared.function_path)
            kwargs = copy.deepcopy(spec.keyword_arguments(run.user_input, run.state))
            tasks.append(ParallelTask(declared.name, spec.func, kwargs))
    return _Batch(tasks, loop, cursor)


def _spec(path: str) -> CallSpec:
    """How to call the task function at ``path`` (imported and checked when the definition
    loaded; the import is cached)."""
    return CallSpec.of(import_callable(path), path)


def _contexts(
    step: CompiledStep, run: StepRun, batch: _Batch, attempt: int
) -> Callable[[ParallelTask], StepContext]:
    """The context factory of one dispatch: the step's context, named after the task, with
    the item and its index for fan-out tasks."""
    base = run.context(step, attempt).__dict__

    def context_for(task: ParallelTask) -> StepContext:
        item, index = batch.loop.get(task.name, (None, None))
        values = {**base, "step_name": task.name, "loop_item": item, "loop_index": index}
        return fast_context(values)

    return context_for


class ParallelRunner(RunnerBase):
    """Runs a PARALLEL step (one batch per run when ``batch_size`` is set)."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, ParallelStep)
        batch = _batch(step, definition, run)
        outcomes = await self._dispatch(step, definition, run, batch) if batch.tasks else {}
        succeeded: list[tuple[str, dict[str, Any]]] = []
        failed: dict[str, BaseException] = {}
        for task in batch.tasks:  # declared order, whatever order they finished in
            outcome = outcomes[task.name]
            if outcome.error is not None:
                failed[task.name] = outcome.error
            else:
                succeeded.append((task.name, outcome.result or {}))
        merged = await self._merge(step, definition, run, succeeded)
        audit: list[AuditEvent] = []
        metadata = None
        if failed:
            for name, error in failed.items():
                logger.warning(
                    "Parallel task %s of step %s failed (partial success allowed): %s",
                    name,
                    step.name,
                    _describe(error),
                )
                audit.append(
                    AuditEvent(
                        "PARALLEL_TASK_FAILED",
                        step_name=step.name,
                        data={
                            "task_name": name,
                            "error": str(error),
                            "error_type": type(error).__name__,
                        },
                    )
                )
            metadata = _errors_metadata(step, run, failed)
        # Each task's duration is a metric (tagged with the task), written with the commit.
        metrics = [
            MetricPoint(
                "parallel_task_duration_ms",
                outcome.duration_ms,
                unit="ms",
                step_name=step.name,
                tags={"task": outcome.name, "ok": outcome.error is None},
            )
            for outcome in outcomes.values()
        ]
        return StepOutcome(
            result=merged, audit=audit, metadata=metadata, metrics=metrics, cursor=batch.cursor
        )

    async def _dispatch(
        self, step: CompiledStep, definition: ParallelStep, run: StepRun, batch: _Batch
    ) -> dict[str, ParallelOutcome]:
        """Run the batch's tasks; with a ``retry_policy``, failed tasks (only they) run again.
        Failures left after the last attempt raise :class:`ParallelExecutionError`, unless the
        step allows partial success. Returns each task's last outcome."""
        policy = definition.retry_policy
        attempts = policy.max_attempts if policy is not None else 1
        outcomes: dict[str, ParallelOutcome] = {}

        async def attempt(number: int) -> None:
            pending = [
                task
                for task in batch.tasks
                if task.name not in outcomes or outcomes[task.name].error is not None
            ]
            for outcome in await run.execution.dispatch_parallel_tasks(
                pending,
                run.state,
                _contexts(step, run, batch, number),
                timeout_seconds=definition.timeout_seconds,
            ):
                outcomes[outcome.name] = outcome
            errors = {
                task.name: error
                for task in batch.tasks
                if (error := outcomes[task.name].error) is not None
            }
            if not errors or (definition.allow_partial_success and number >= attempts):
                return
            described = {name: _describe(error) for name, error in errors.items()}
            raise ParallelExecutionError(step.name, described) from next(iter(errors.values()))

        await with_retries(step, attempt, run=run)
        return outcomes

    async def _merge(
        self,
        step: CompiledStep,
        definition: ParallelStep,
        run: StepRun,
        results: list[tuple[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        """The step's result: the task results merged (built-in or ``merge_function_path``),
        made to merge DEEP into the state when the strategy says so."""
        if definition.merge_function_path is not None:
            merge = import_callable(definition.merge_function_path)
            returned = merge(dict(results), isolated_state(run.state))
            if inspect.isawaitable(returned):
                returned = await returned
            merged = step_result(step.name, returned)
        else:
            merged = merge_task_results(
                step.name, results, definition.merge_strategy, definition.merge_conflict_behavior
            )
        if definition.merge_strategy is MergeStrategy.DEEP:
            merged = deep_into_state(run.state, merged)
        return merged


def _errors_metadata(
    step: CompiledStep, run: StepRun, failed: Mapping[str, BaseException]
) -> dict[str, Any]:
    """``metadata.parallel_errors`` with this step's failed tasks (``{step: {task: "Type:
    message"}}``), keeping the entries of other steps and, for a later batch, of this step's
    earlier batches.

    The step's commit writes the whole key back; a fresh run of the step (no cursor) starts
    its own entry anew.
    """
    stored = run.metadata.get("parallel_errors")
    existing: dict[str, Any] = dict(stored) if isinstance(stored, Mapping) else {}
    earlier = existing.get(step.name) if run.cursor is not None else None
    errors = dict(earlier) if isinstance(earlier, Mapping) else {}
    errors.update({name: _describe(error) for name, error in failed.items()})
    return {"parallel_errors": {**existing, step.name: errors}}
