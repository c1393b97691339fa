"""Step functions of the step-timeout tests (``tests/engine/test_step_timeouts.py``).

The slow ones wait for :data:`RELEASE` (at most :data:`BLOCK_LIMIT` seconds), which the tests
set when they end, so a thread the engine stopped waiting for does not outlive its test.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

from ruvon.models import StepContext
from tests.support.order_steps import OrderState

T = "tests.support.timeout_steps"
"""This module, as workflow files name it."""

BLOCK_LIMIT = 10.0

RELEASE = threading.Event()
"""Set when a test ends: what still waits for it returns."""

CALLS: defaultdict[str, list[int]] = defaultdict(list)
"""workflow id -> ``context.attempt`` of every call that started."""

FINISHED: defaultdict[str, list[int]] = defaultdict(list)
"""workflow id -> ``context.attempt`` of every plain call that returned."""

LATE_RETURNED = threading.Event()
"""Set when the blocked first attempt of :func:`slow_first_attempt` returned."""


def slow_plain(state: OrderState, context: StepContext) -> dict[str, Any]:
    CALLS[context.workflow_id].append(context.attempt)
    RELEASE.wait(BLOCK_LIMIT)
    FINISHED[context.workflow_id].append(context.attempt)
    return {"note": f"late {context.attempt}"}


async def slow_async(state: OrderState, context: StepContext) -> dict[str, Any]:
    CALLS[context.workflow_id].append(context.attempt)
    await asyncio.sleep(BLOCK_LIMIT)
    return {"note": f"late {context.attempt}"}


def slow_first_attempt(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Blocks on its first attempt only; the second answers at once."""
    CALLS[context.workflow_id].append(context.attempt)
    if context.attempt == 1:
        RELEASE.wait(BLOCK_LIMIT)
        LATE_RETURNED.set()
    FINISHED[context.workflow_id].append(context.attempt)
    return {"note": f"attempt {context.attempt}", "attempts": [context.attempt]}


def own_timeout(state: OrderState, context: StepContext) -> dict[str, Any]:
    raise TimeoutError("upstream too slow")


def quick(state: OrderState, context: StepContext, label: str = "quick") -> dict[str, Any]:
    return {"note": label, "visited": [*state.visited, threading.current_thread().name]}
