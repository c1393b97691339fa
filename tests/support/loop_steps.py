"""Body functions and the state model of the LOOP tests.

Every record a test reads is kept per workflow id, so tests never interfere with each other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml
from pydantic import BaseModel, Field

from ruvon.models import StepContext, WorkflowJumpDirective
from tests.support.config import ConfigDir, workflow

L = "tests.support.loop_steps"
"""This module, as workflow files name it."""


class LoopState(BaseModel):
    """The state of every LOOP test workflow."""

    order_id: str = "L"
    items: list[Any] = Field(default_factory=list)
    lines: list[dict[str, Any]] = Field(default_factory=list)
    not_a_list: dict[str, Any] = Field(default_factory=lambda: {"a": 1})
    total: int = 0
    doubled: int = 0
    counter: int = 0
    limit: int = 3
    sizes: list[str] = Field(default_factory=list)
    loop_results: list[dict[str, Any]] = Field(default_factory=list)
    loop_iterations: int | None = None
    finished: bool = False


CALLS: dict[str, list[tuple[str, int | None, Any, Any]]] = defaultdict(list)
"""workflow id -> (context.step_name, context.loop_index, context.loop_item, the item argument)
of every call of a body function that takes the item."""
FAIL_AT: dict[str, int] = {}
"""workflow id -> the iteration :func:`add_or_fail` fails at, once (removed when it fails)."""
PEEKS: dict[str, list[tuple[int | None, Any, int]]] = defaultdict(list)
"""workflow id -> (loop_index, the stored loop cursor, the stored total) seen by :func:`peek`."""


def add(state: LoopState, context: StepContext, item: int) -> dict[str, Any]:
    """Add the item to ``total``; records the context's loop values and the argument."""
    CALLS[context.workflow_id].append(
        (context.step_name, context.loop_index, context.loop_item, item)
    )
    return {"total": state.total + item}


def double(state: LoopState, context: StepContext) -> dict[str, Any]:
    """Reads what the body step before it merged: ``doubled = 2 * total``."""
    return {"doubled": state.total * 2, "note": f"doubled at {context.loop_index}"}


def add_quantity(state: LoopState, context: StepContext, line: dict[str, Any]) -> dict[str, Any]:
    """``item_var_name: line``: add the line's ``qty`` to ``total``."""
    CALLS[context.workflow_id].append(
        (context.step_name, context.loop_index, dict(context.loop_item), dict(line))
    )
    quantity = line["qty"]
    line["qty"] = -1  # the body's copy of the item: the state's line is not changed
    return {"total": state.total + quantity}


def count(state: LoopState, context: StepContext) -> dict[str, Any]:
    """One more ``counter``."""
    CALLS[context.workflow_id].append(
        (context.step_name, context.loop_index, context.loop_item, None)
    )
    return {"counter": state.counter + 1}


def add_or_fail(state: LoopState, context: StepContext, item: int) -> dict[str, Any]:
    """:func:`add`, but fails at the iteration ``FAIL_AT`` names, the first time only."""
    CALLS[context.workflow_id].append(
        (context.step_name, context.loop_index, context.loop_item, item)
    )
    if FAIL_AT.get(context.workflow_id) == context.loop_index:
        del FAIL_AT[context.workflow_id]
        raise ConnectionError(f"item {item}: service unavailable")
    return {"total": state.total + item}


async def peek(state: LoopState, context: StepContext) -> dict[str, Any]:
    """Read the stored row before the iteration runs: what earlier iterations committed."""
    record = await context.persistence.load_workflow(context.workflow_id)
    loops = record.progress.get("loops", {})
    PEEKS[context.workflow_id].append(
        (context.loop_index, loops.get("Each"), record.state["total"])
    )
    return {}


def size(state: LoopState, context: StepContext) -> dict[str, Any]:
    """The routing body step: its routes read the item by name."""
    return {}


def big(state: LoopState, context: StepContext) -> dict[str, Any]:
    return {"sizes": [*state.sizes, f"big {context.loop_item}"]}


def small(state: LoopState, context: StepContext) -> dict[str, Any]:
    return {"sizes": [*state.sizes, f"small {context.loop_item}"]}


def extra_key(state: LoopState, context: StepContext, item: int) -> dict[str, Any]:
    """Returns a key the model does not have: kept in ``loop_results`` only."""
    return {"total": state.total + item, "not_a_field": item}


def add_to_dict(state: dict[str, Any], context: StepContext, item: int) -> dict[str, Any]:
    """:func:`add` for a dict state (``builtins.dict``)."""
    return {"total": state.get("total", 0) + item, "seen": [*state.get("seen", []), item]}


def not_a_dict(state: LoopState, context: StepContext) -> Any:
    return "done"


def unstorable(state: LoopState, context: StepContext) -> dict[str, Any]:
    return {"handle": object()}


def jumps(state: LoopState, context: StepContext) -> dict[str, Any]:
    raise WorkflowJumpDirective("Finish")


def finish(state: LoopState, context: StepContext) -> dict[str, Any]:
    return {"finished": True}


def write(
    config: ConfigDir,
    workflow_type: str,
    *,
    body: list[dict[str, Any]],
    state_model: str = f"{L}.LoopState",
    **keys: Any,
) -> None:
    """Write a workflow with the LOOP step ``Each`` (``automate_next``, ``loop_body: body``,
    plus ``keys``) followed by ``Finish``."""
    step = {"name": "Each", "type": "LOOP", "automate_next": True, **keys, "loop_body": body}
    steps = [step, {"name": "Finish", "function": f"{L}.finish"}]
    text = yaml.safe_dump(steps, sort_keys=False)
    config.write(workflow_type, workflow(workflow_type, text, state_model=state_model))


def body(*functions: str, **keys: Any) -> list[dict[str, Any]]:
    """Body steps named after ``functions`` (of this module), in order; ``keys`` go on each."""
    return [{"name": name.capitalize(), "function": f"{L}.{name}", **keys} for name in functions]
