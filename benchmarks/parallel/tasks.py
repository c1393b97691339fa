"""The step functions of the PARALLEL and DAG workloads: all trivial, so what is measured is
the engine. Every workflow's state is a plain dict (``initial_state_model: builtins.dict``)."""

from __future__ import annotations

from typing import Any

from ruvon import StepContext


def item_task(state: dict[str, Any], context: StepContext, item: int) -> dict[str, int]:
    """One fan-out task of the PARALLEL step: a one-key result, distinct for every item."""
    return {f"k{item}": item}


def all_items(state: dict[str, Any], context: StepContext) -> dict[str, int]:
    """The baseline: one STANDARD step that calls ``item_task`` for every item and merges the
    results itself, so that it makes the same calls and the same result as the PARALLEL step
    and commits it the same way."""
    result: dict[str, int] = {}
    for item in state["items"]:
        result.update(item_task(state, context, item))
    return result


def mark(state: dict[str, Any], context: StepContext) -> dict[str, bool]:
    """A DAG or sequential step: sets the key named after the step."""
    return {context.step_name: True}
