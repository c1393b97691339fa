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

When the execution provider sends tasks elsewhere (``remote_parallel_tasks``), the runner
returns a :class:`FanOut` instead of running the batch: the engine commits the run
PENDING_ASYNC with a token per task and dispatches each task on its own (``_workflow_fanout``);
the worker finds its task again with :func:`find_task` and the report that completes the batch
merges it with :func:`~ruvon.steps.merging.fan_in`, like this runner does.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruvon.definition.compiled import CallSpec, CompiledStep
from ruvon.definition.loader import import_callable
from ruvon.definition.schema import ParallelStep
from ruvon.models import StepContext, WorkflowStatus
from ruvon.providers.execution import ParallelOutcome, ParallelTask, StepFunction
from ruvon.steps.base import (
    RunnerBase,
    StepOutcome,
    StepRun,
    fast_context,
    resolve_list,
    with_retries,
)
from ruvon.steps.merging import fan_in, parallel_failure

__all__ = ["FanOut", "FanOutTask", "ParallelRunner", "find_task", "task_context"]

logger = logging.getLogger("ruvon.steps")


@dataclass(frozen=True, slots=True)
class FanOutTask:
    """One task of a PARALLEL step as it is dispatched and run on its own."""

    name: str
    function_path: str
    func: StepFunction
    kwargs: Mapping[str, Any]
    """Its keyword arguments (the item under ``item_var_name`` for fan-out tasks): what is
    sent with the task as its ``user_input``."""
    loop_item: Any = None
    loop_index: int | None = None


@dataclass(slots=True)
class FanOut(StepOutcome):
    """What a PARALLEL step asks for when the execution provider runs its tasks elsewhere:
    dispatch ``tasks`` (this batch) one by one; the run waits in PENDING_ASYNC until all of
    them reported. ``next_cursor`` is the step's cursor after them (``None``: last batch)."""

    tasks: Sequence[FanOutTask] = ()
    next_cursor: Any = None


@dataclass(frozen=True, slots=True)
class _Batch:
    """The tasks one run of the step dispatches, and where the step goes on after them."""

    tasks: list[FanOutTask]
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
    if definition.iterate_over:
        assert definition.task_function is not None  # the schema requires it
        spec = _spec(definition.task_function)
        shared = spec.keyword_arguments(run.user_input, run.state)
        tasks = [
            _item_task(step, definition, spec, shared, items, index) for index in range(start, stop)
        ]
    else:
        tasks = [
            _declared_task(declared.name, declared.function_path, run)
            for declared in definition.tasks[start:stop]
        ]
    return _Batch(tasks, cursor)


def _item_task(
    step: CompiledStep,
    definition: ParallelStep,
    spec: CallSpec,
    shared: Mapping[str, Any],
    items: Sequence[Any],
    index: int,
) -> FanOutTask:
    """The fan-out task of ``items[index]``."""
    assert definition.task_function is not None
    item = copy.deepcopy(items[index])  # a task cannot change the state through it
    kwargs = copy.deepcopy(dict(shared))
    if spec.accepts_any_keyword or definition.item_var_name in spec.keyword_names:
        kwargs[definition.item_var_name] = item
    name = f"{step.name}_{index}"
    return FanOutTask(name, definition.task_function, spec.func, kwargs, item, index)


def _declared_task(name: str, path: str, run: StepRun) -> FanOutTask:
    """The declared task ``name`` running the function at ``path``."""
    spec = _spec(path)
    kwargs = copy.deepcopy(spec.keyword_arguments(run.user_input, run.state))
    return FanOutTask(name, path, spec.func, kwargs)


def find_task(step: CompiledStep, run: StepRun, name: str) -> FanOutTask | None:
    """The task ``name`` of the PARALLEL ``step`` as :class:`ParallelRunner` makes it for
    ``run`` (a fan-out task's item is read from ``run.state``); None when the step has no such
    task (any more)."""
    definition = step.definition
    assert isinstance(definition, ParallelStep)
    if not definition.iterate_over:
        for declared in definition.tasks:
            if declared.name == name:
                return _declared_task(name, declared.function_path, run)
        return None
    prefix = f"{step.name}_"
    digits = name[len(prefix) :] if name.startswith(prefix) else ""
    if not digits.isdigit() or definition.task_function is None:
        return None
    items = resolve_list("PARALLEL", step.name, definition.iterate_over, run.state)
    index = int(digits)
    if index >= len(items):
        return None
    spec = _spec(definition.task_function)
    shared = spec.keyword_arguments(run.user_input, run.state)
    return _item_task(step, definition, spec, shared, items, index)


def _spec(path: str) -> CallSpec:
    """How to call the task function at ``path`` (imported and checked when the definition
    loaded; the import is cached)."""
    return CallSpec.of(import_callable(path), path)


def task_context(
    step: CompiledStep, run: StepRun, task: FanOutTask, attempt: int = 1
) -> StepContext:
    """The context of one task: the step's context, named after the task, with the item and
    its index for fan-out tasks."""
    return _contexts(step, run, {task.name: task}, attempt)(task)


def _contexts(
    step: CompiledStep, run: StepRun, tasks: Mapping[str, FanOutTask], attempt: int
) -> Callable[[ParallelTask | FanOutTask], StepContext]:
    """The context factory of one dispatch of ``tasks`` (by name): see :func:`task_context`."""
    base = run.context(step, attempt).__dict__

    def context_for(task: ParallelTask | FanOutTask) -> StepContext:
        known = tasks[task.name]
        values = {
            **base,
            "step_name": task.name,
            "loop_item": known.loop_item,
            "loop_index": known.loop_index,
        }
        return fast_context(values)

    return context_for


class ParallelRunner(RunnerBase):
    """Runs a PARALLEL step (one batch per run when ``batch_size`` is set)."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, ParallelStep)
        batch = _batch(step, definition, run)
        if batch.tasks and getattr(run.execution, "remote_parallel_tasks", False):
            return FanOut(
                wait=WorkflowStatus.PENDING_ASYNC,
                completes_step=False,
                waiting_for=step.name,
                tasks=batch.tasks,
                next_cursor=batch.cursor,
            )
        outcomes = await self._dispatch(step, definition, run, batch) if batch.tasks else {}
        # Declared order, whatever order they finished in.
        ordered = [outcomes[task.name] for task in batch.tasks]
        return await fan_in(step, run, ordered, batch.cursor)

    async def _dispatch(
        self, step: CompiledStep, definition: ParallelStep, run: StepRun, batch: _Batch
    ) -> dict[str, ParallelOutcome]:
        """Run the batch's tasks; with a ``retry_policy``, failed tasks (only they) run again.
        Failures left after the last attempt raise :class:`ParallelExecutionError`, unless the
        step allows partial success. Returns each task's last outcome."""
        policy = definition.retry_policy
        attempts = policy.max_attempts if policy is not None else 1
        outcomes: dict[str, ParallelOutcome] = {}
        by_name = {task.name: task for task in batch.tasks}
        tasks = [ParallelTask(task.name, task.func, task.kwargs) for task in batch.tasks]

        async def attempt(number: int) -> None:
            pending = [
                task
                for task in tasks
                if task.name not in outcomes or outcomes[task.name].error is not None
            ]
            for outcome in await run.execution.dispatch_parallel_tasks(
                pending,
                run.state,
                _contexts(step, run, by_name, number),
                timeout_seconds=definition.timeout_seconds,
            ):
                outcomes[outcome.name] = outcome
            errors = {
                task.name: error
                for task in tasks
                if (error := outcomes[task.name].error) is not None
            }
            if not errors or (definition.allow_partial_success and number >= attempts):
                return
            raise parallel_failure(step.name, errors)

        await with_retries(step, attempt, run=run)
        return outcomes
