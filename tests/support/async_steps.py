"""Step functions of the ASYNC tests. A "slow" function blocks on an event per workflow, so a
test decides when the background work finishes (never a sleep)."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ruvon.models import StepContext
from tests.support.order_steps import OrderState

GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
"""workflow id -> the event a gated function waits for."""

CALLS: defaultdict[str, int] = defaultdict(int)


def score(state: OrderState, context: StepContext) -> dict[str, Any]:
    CALLS[context.workflow_id] += 1
    return {"score": state.amount * 2, "visited": [*state.visited, context.step_name]}


def gated_score(state: OrderState, context: StepContext) -> dict[str, Any]:
    if not GATES[context.workflow_id].wait(timeout=30):
        raise TimeoutError("the test never opened the gate")
    return score(state, context)


def bureau_down(state: OrderState, context: StepContext) -> dict[str, Any]:
    raise ConnectionError("credit bureau unreachable")
