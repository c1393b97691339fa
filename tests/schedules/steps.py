"""Step functions of the schedule tests.

``tick`` records every call, in this process (:data:`TICKS`) and, when
``RUVON_TEST_TICK_FILE`` names a file, as one line there, so that a test can count how often the
first step of a scheduled workflow ran across processes.
"""

from __future__ import annotations

import os
from typing import Any

from ruvon.models import StepContext
from tests.support.order_steps import OrderState

TICKS: list[str] = []
"""The workflow id of every call of :func:`tick` in this process."""

TICK_FILE_ENV = "RUVON_TEST_TICK_FILE"


def tick(state: OrderState, context: StepContext) -> dict[str, Any]:
    """The first step of a scheduled workflow: record the call."""
    TICKS.append(context.workflow_id)
    path = os.environ.get(TICK_FILE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(f"{context.workflow_id}\n")
    return {"visited": [*state.visited, context.step_name]}


def tock(state: OrderState, context: StepContext) -> dict[str, Any]:
    """The second step: never run by the scheduler."""
    return {"visited": [*state.visited, context.step_name]}


def explode(state: OrderState, context: StepContext) -> dict[str, Any]:
    """A first step that fails."""
    raise RuntimeError("the night shift is on strike")
