"""Step functions of the crash-recovery tests. Each counts its calls per workflow (in
:data:`RUNS`); :func:`dies` stands in for a process that dies in the middle of the step: it
raises :class:`ProcessDied`, a ``BaseException`` the engine does not catch, so nothing of the
step is committed, exactly as after a SIGKILL (tests/crash/ kills real processes)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from ruvon.models import StepContext
from tests.support.order_steps import OrderState

RUNS: defaultdict[str, list[str]] = defaultdict(list)
"""workflow id -> the steps that ran, in order (also the attempts that died)."""

DYING: set[str] = set()
"""Workflow ids whose next call of :func:`dies` kills "the process"."""


class ProcessDied(BaseException):
    """The process running the step is gone (nothing after this point happens)."""


def count(state: OrderState, context: StepContext) -> dict[str, Any]:
    RUNS[context.workflow_id].append(context.step_name)
    return {"visited": [*state.visited, context.step_name]}


def dies(state: OrderState, context: StepContext) -> dict[str, Any]:
    RUNS[context.workflow_id].append(context.step_name)
    if context.workflow_id in DYING:
        DYING.discard(context.workflow_id)
        raise ProcessDied(context.step_name)
    return {"visited": [*state.visited, context.step_name]}


def dies_first(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Kills "the process" the first time it runs for a workflow."""
    RUNS[context.workflow_id].append(context.step_name)
    if RUNS[context.workflow_id].count(context.step_name) == 1:
        raise ProcessDied(context.step_name)
    return {"visited": [*state.visited, context.step_name]}


def fails_first(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Fails its first attempt (per workflow), then works."""
    RUNS[context.workflow_id].append(context.step_name)
    if RUNS[context.workflow_id].count(context.step_name) == 1:
        raise ConnectionError("service unavailable")
    return {"visited": [*state.visited, context.step_name]}


def declined(state: OrderState, context: StepContext) -> dict[str, Any]:
    RUNS[context.workflow_id].append(context.step_name)
    raise ValueError("card declined")


def undo_dies_first(state: OrderState, context: StepContext) -> dict[str, Any]:
    """A compensation whose first attempt kills "the process"."""
    RUNS[context.workflow_id].append(f"undo {context.step_name}")
    if RUNS[context.workflow_id].count(f"undo {context.step_name}") == 1:
        raise ProcessDied(context.step_name)
    return {"compensations": [*state.compensations, context.step_name]}


GATES: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
"""workflow id -> opened by the test to let :func:`gated` finish."""


async def gated(state: OrderState, context: StepContext) -> dict[str, Any]:
    RUNS[context.workflow_id].append(context.step_name)
    await asyncio.wait_for(GATES[context.workflow_id].wait(), timeout=30)
    return {"visited": [*state.visited, context.step_name]}
