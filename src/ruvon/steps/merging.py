"""Merging the results of a PARALLEL step's tasks into one result, and the step's outcome
from its tasks' outcomes (:func:`fan_in`, the one merge of both paths: tasks run in this
process through ``dispatch_parallel_tasks``, or one by one elsewhere and merged by the report
that completes the set).

Results are merged in the tasks' *declared* order, never in the order they finished, so the
merged result is the same on every execution provider and in every run. A conflict is a key
that two tasks return with different values (equal values never conflict); it is resolved
between the task results only — the workflow's state is not a party to it:

- ``PREFER_NEW``: the later task in declared order wins;
- ``PREFER_EXISTING``: the earlier task wins;
- ``RAISE_ERROR``: :class:`~ruvon.errors.MergeConflictError` naming the key and both tasks.

``SHALLOW`` compares top-level keys; ``DEEP`` merges mappings key by key and compares the
leaves (a nested key is named ``outer.inner``). :func:`deep_into_state` then makes a DEEP
result merge into the state's current mappings instead of replacing them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.loader import import_callable
from ruvon.definition.schema import ParallelStep
from ruvon.errors import MergeConflictError, ParallelExecutionError
from ruvon.models import MergeConflictBehavior, MergeStrategy
from ruvon.providers.execution import ParallelOutcome, isolated_state, step_result
from ruvon.providers.persistence import AuditEvent, MetricPoint
from ruvon.state import merge_dicts
from ruvon.steps.base import StepOutcome, StepRun

__all__ = [
    "TaskError",
    "deep_into_state",
    "describe",
    "error_type",
    "fan_in",
    "merge_task_results",
    "parallel_failure",
]

logger = logging.getLogger("ruvon.steps")


class TaskError(Exception):
    """A parallel task's failure as it was recorded (the task ran in another process, its
    report was committed): the original exception's type name and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def error_type(error: BaseException) -> str:
    """The name of the type of a task's error (the original one for a :class:`TaskError`)."""
    return error.error_type if isinstance(error, TaskError) else type(error).__name__


def describe(error: BaseException) -> str:
    """A task's error as ``"ErrorType: message"``."""
    return f"{error_type(error)}: {error}"


def parallel_failure(step_name: str, failed: Mapping[str, BaseException]) -> ParallelExecutionError:
    """The error of a step whose tasks ``failed`` (declared order), caused by the first."""
    error = ParallelExecutionError(step_name, {name: describe(e) for name, e in failed.items()})
    error.__cause__ = next(iter(failed.values()))  # as ``raise error from first``
    error.__suppress_context__ = True
    return error


async def fan_in(
    step: CompiledStep, run: StepRun, outcomes: Sequence[ParallelOutcome], cursor: Any
) -> StepOutcome:
    """The outcome of one run (one batch) of a PARALLEL step from its tasks' ``outcomes``, in
    declared order: the results of the tasks that succeeded merged (built-in strategy or
    ``merge_function_path``), a ``PARALLEL_TASK_FAILED`` entry and ``metadata.parallel_errors``
    for each task that failed, a ``parallel_task_duration_ms`` point per task, and ``cursor``
    (``{"next": i}`` when batches follow, else ``None``).

    Raises :class:`ParallelExecutionError` (nothing merged) when a task failed and the step
    does not allow partial success, :class:`MergeConflictError` for a conflict under
    ``RAISE_ERROR``. ``run`` is the step's run: its state (merged into), metadata and cursor.
    """
    definition = step.definition
    assert isinstance(definition, ParallelStep)
    failed = {o.name: o.error for o in outcomes if o.error is not None}
    if failed and not definition.allow_partial_success:
        raise parallel_failure(step.name, failed)
    succeeded = [(o.name, o.result or {}) for o in outcomes if o.error is None]
    merged = await _merge(step, definition, run, succeeded)
    audit: list[AuditEvent] = []
    metadata = None
    if failed:
        for name, error in failed.items():
            logger.warning(
                "Parallel task %s of step %s failed (partial success allowed): %s",
                name,
                step.name,
                describe(error),
            )
            audit.append(
                AuditEvent(
                    "PARALLEL_TASK_FAILED",
                    step_name=step.name,
                    data={"task_name": name, "error": str(error), "error_type": error_type(error)},
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
        for outcome in outcomes
    ]
    return StepOutcome(
        result=merged, audit=audit, metadata=metadata, metrics=metrics, cursor=cursor
    )


async def _merge(
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
    errors.update({name: describe(error) for name, error in failed.items()})
    return {"parallel_errors": {**existing, step.name: errors}}


def merge_task_results(
    step_name: str,
    results: Iterable[tuple[str, Mapping[str, Any]]],
    strategy: MergeStrategy,
    behavior: MergeConflictBehavior,
) -> dict[str, Any]:
    """The ``(task name, result)`` pairs, in declared order, merged into one new dict.

    Raises :class:`MergeConflictError` for a conflict under ``RAISE_ERROR``. The task results
    are not changed.
    """
    merged: dict[str, Any] = {}
    owners: dict[str, str] = {}
    deep = strategy is MergeStrategy.DEEP
    for task, result in results:
        _merge_into(merged, result, task, owners, "", deep, behavior, step_name)
    return merged


def _merge_into(
    target: dict[str, Any],
    update: Mapping[str, Any],
    task: str,
    owners: dict[str, str],
    prefix: str,
    deep: bool,
    behavior: MergeConflictBehavior,
    step_name: str,
) -> None:
    """Merge one task's ``update`` into ``target`` (the mapping at ``prefix``); ``owners``
    records which task set each key path, for the conflict message."""
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in target:
            target[key] = _copy(value)
            owners[path] = task
            continue
        current = target[key]
        if deep and isinstance(current, dict) and isinstance(value, Mapping):
            _merge_into(current, value, task, owners, f"{path}.", deep, behavior, step_name)
            continue
        if current == value:
            continue
        if behavior is MergeConflictBehavior.RAISE_ERROR:
            raise MergeConflictError(step_name, path, _owner(owners, path), task)
        if behavior is MergeConflictBehavior.PREFER_NEW:
            target[key] = _copy(value)
            owners[path] = task
        # PREFER_EXISTING: the earlier task's value stays.


def _owner(owners: Mapping[str, str], path: str) -> str:
    """The task that set ``path``, or the nearest enclosing key it set."""
    while path not in owners and "." in path:
        path = path.rpartition(".")[0]
    return owners.get(path, "?")


def _copy(value: Any) -> Any:
    """``value`` with its mappings copied, so that merging into it changes no task's result."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    return value


def deep_into_state(state: Any, merged: Mapping[str, Any]) -> dict[str, Any]:
    """``merged`` made to merge DEEP into ``state``: each mapping in it is merged into the
    state's current mapping of the same key (a sub-model counts as its dump), so that the
    engine's top-level merge keeps the keys the tasks did not return. Other values are kept
    as they are."""
    adjusted = dict(merged)
    for key, value in merged.items():
        if not isinstance(value, Mapping):
            continue
        current = state.get(key) if isinstance(state, Mapping) else getattr(state, key, None)
        if isinstance(current, BaseModel):
            current = current.model_dump()
        if isinstance(current, Mapping):
            adjusted[key] = merge_dicts(current, value, MergeStrategy.DEEP)
    return adjusted
