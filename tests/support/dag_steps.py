"""Step functions of the dependency (DAG) tests: two branches that can only finish together
(a barrier), and ones that record the order they ran in."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ruvon.models import StepContext
from tests.support.order_steps import OrderState

BARRIERS: defaultdict[str, threading.Barrier] = defaultdict(
    lambda: threading.Barrier(2, timeout=10)
)
"""workflow id -> a barrier both branches must reach: it breaks unless they run at once."""

ORDER: defaultdict[str, list[str]] = defaultdict(list)


def meet(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Wait for the other branch; only concurrent branches get past."""
    BARRIERS[context.workflow_id].wait()
    return {context.step_name.lower(): True, "note": f"{context.step_name} met"}


def record(state: OrderState, context: StepContext) -> dict[str, Any]:
    ORDER[context.workflow_id].append(context.step_name)
    return {"visited": [*state.visited, context.step_name], "note": context.step_name}


def left(state: OrderState, context: StepContext) -> dict[str, Any]:
    ORDER[context.workflow_id].append(context.step_name)
    return {"approved": True, "note": "left"}


def right(state: OrderState, context: StepContext) -> dict[str, Any]:
    ORDER[context.workflow_id].append(context.step_name)
    return {"reviewer": "right", "note": "right"}


GATES: defaultdict[tuple[str, str], threading.Event] = defaultdict(threading.Event)
"""(workflow id, step name) -> the event a gated ASYNC branch waits for."""

CALLS: defaultdict[tuple[str, str], int] = defaultdict(int)
"""(workflow id, step name) -> how often a gated branch's function ran."""


def gated_left(state: OrderState, context: StepContext) -> dict[str, Any]:
    """An ASYNC branch that finishes when the test opens its gate."""
    key = (context.workflow_id, context.step_name)
    CALLS[key] += 1
    if not GATES[key].wait(timeout=30):
        raise TimeoutError("the test never opened the gate")
    return {"approved": True}


def gated_right(state: OrderState, context: StepContext) -> dict[str, Any]:
    key = (context.workflow_id, context.step_name)
    CALLS[key] += 1
    if not GATES[key].wait(timeout=30):
        raise TimeoutError("the test never opened the gate")
    return {"reviewer": "right"}


def quick_left(state: OrderState, context: StepContext) -> dict[str, Any]:
    ORDER[context.workflow_id].append(context.step_name)
    return {"approved": True}


def quick_right(state: OrderState, context: StepContext) -> dict[str, Any]:
    ORDER[context.workflow_id].append(context.step_name)
    return {"reviewer": "right"}
