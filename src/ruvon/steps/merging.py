"""Merging the results of a PARALLEL step's tasks into one result.

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

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from ruvon.errors import MergeConflictError
from ruvon.models import MergeConflictBehavior, MergeStrategy
from ruvon.state import merge_dicts

__all__ = ["deep_into_state", "merge_task_results"]


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
