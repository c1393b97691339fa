"""Task functions, merge functions and the state model of the PARALLEL tests.

Tasks never sleep to get an order: a :class:`Turnstile` lets tasks running at the same time on
the thread pool finish in the order the test asks for, a ``threading.Barrier`` proves they run
at the same time, and gates (``threading.Event``) hold a task until the test releases it. All
bookkeeping is keyed by workflow id, so tests never interfere with each other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, Field

from ruvon.models import StepContext
from tests.support.config import ConfigDir, workflow

P = "tests.support.parallel_steps"
"""This module, as workflow files name it."""

WAIT = 10.0
"""Upper bound (s) of every wait in a task: a broken test fails instead of hanging."""


class ParallelState(BaseModel):
    """The state of every PARALLEL test workflow."""

    order_id: str = "P"
    items: list[Any] = Field(default_factory=list)
    not_a_list: dict[str, Any] = Field(default_factory=lambda: {"a": 1})
    finish_order: list[str] = Field(default_factory=list)
    """Task names in the order the turnstile lets them finish (empty: no turnstile)."""
    price: int | None = None
    info: dict[str, Any] = Field(default_factory=lambda: {"base": 0})
    only_a: str | None = None
    total: int | None = None
    merged_order: list[str] = Field(default_factory=list)
    totals: dict[str, int] = Field(default_factory=dict)
    finished: bool = False


class Turnstile:
    """Lets tasks pass one at a time, in a given order, whatever order they arrive in."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.passed: list[str] = []

    def pass_in_turn(self, name: str, order: list[str]) -> None:
        with self.condition:

            def my_turn() -> bool:
                return len(self.passed) < len(order) and order[len(self.passed)] == name

            if not self.condition.wait_for(my_turn, timeout=WAIT):
                raise TimeoutError(f"task {name} never got its turn in {order}")
            self.passed.append(name)
            self.condition.notify_all()


_LOCK = threading.Lock()
TURNSTILES: dict[str, Turnstile] = {}
BARRIERS: dict[str, threading.Barrier] = {}
"""workflow id -> the barrier :func:`meet` waits at (set up by the test)."""
GATES: dict[str, threading.Event] = {}
"""workflow id -> the event :func:`times_ten` waits for on a gated item (set up by the test)."""
GATED_ITEMS: dict[str, set[Any]] = defaultdict(set)
FAIL_ITEMS: dict[str, set[Any]] = defaultdict(set)
"""workflow id -> items :func:`times_ten` fails on."""
CALLS: dict[str, list[Any]] = defaultdict(list)
"""workflow id -> the items :func:`times_ten` was called with, in call order."""
SEEN: dict[str, list[tuple[str, int | None, Any]]] = defaultdict(list)
"""workflow id -> (context.step_name, loop_index, loop_item) of each fan-out task."""
ORDER: dict[str, list[str]] = defaultdict(list)
"""workflow id -> what :func:`one_at_a_time` logged."""


def turnstile(workflow_id: str) -> Turnstile:
    with _LOCK:
        return TURNSTILES.setdefault(workflow_id, Turnstile())


QUOTES: dict[str, dict[str, Any]] = {
    "a": {"price": 1, "info": {"x": 1, "shared": "a"}, "only_a": "a"},
    "b": {"price": 2, "info": {"y": 2, "shared": "b"}},
    "c": {"price": 3, "info": {"z": 3}},
}
"""What the tasks a, b and c of the merge tests return."""


def quote(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Return the quote of the task (``context.step_name``) once the turnstile lets it."""
    if state.finish_order:
        turnstile(context.workflow_id).pass_in_turn(context.step_name, state.finish_order)
    state.price = 999  # a task's copy of the state: never seen by the workflow
    return QUOTES[context.step_name]


def same_price(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Every task returns the same price (no conflict) and a key of its own under ``info``."""
    return {"price": 5, "info": {context.step_name: 1}}


def shared_info(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Tasks disagree on the nested key ``info.shared``."""
    return {"info": {"shared": context.step_name}}


def explode(state: ParallelState, context: StepContext) -> dict[str, Any]:
    raise ValueError(f"{context.step_name} exploded")


async def never_finishes(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Waits for an event nobody sets: only the step's ``timeout_seconds`` ends it."""
    await asyncio.Event().wait()
    return {"price": -1}


def summarize(results: Mapping[str, dict[str, Any]], state: ParallelState) -> dict[str, Any]:
    """A ``merge_function_path``: the sum of the prices, and the order the results came in."""
    return {"total": sum(r["price"] for r in results.values()), "merged_order": list(results)}


def times_ten(state: ParallelState, context: StepContext, item: int) -> dict[str, Any]:
    """A fan-out task: ``totals[item] = item * 10``; fails or waits on the test's items."""
    workflow_id = context.workflow_id
    with _LOCK:
        CALLS[workflow_id].append(item)
        SEEN[workflow_id].append((context.step_name, context.loop_index, context.loop_item))
    if item in GATED_ITEMS[workflow_id] and not GATES[workflow_id].wait(timeout=WAIT):
        raise TimeoutError("the test never opened the gate")
    if item in FAIL_ITEMS[workflow_id]:
        raise ValueError(f"item {item} failed")
    return {"totals": {str(item): item * 10}}


def count_line(state: ParallelState, context: StepContext, line: dict[str, Any]) -> dict[str, Any]:
    """A fan-out task with ``item_var_name: line``; changes its copies of the line and state."""
    with _LOCK:
        SEEN[context.workflow_id].append(
            (context.step_name, context.loop_index, dict(context.loop_item))
        )
    total = line["qty"]
    line["qty"] = -1
    state.items.clear()
    return {"totals": {line["sku"]: total}}


def meet(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Waits at the workflow's barrier: passes only if every task runs at the same time."""
    BARRIERS[context.workflow_id].wait(timeout=WAIT)
    return {"info": {context.step_name: threading.current_thread().name}}


async def one_at_a_time(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Logs its start and end, giving the event loop a chance to run other tasks in between:
    tasks that run one after another log ``start x, end x`` pairs, concurrent ones interleave."""
    log = ORDER[context.workflow_id]
    log.append(f"start {context.step_name}")
    for _ in range(3):
        await asyncio.sleep(0)  # a yield to the event loop, not a delay
    log.append(f"end {context.step_name}")
    return {"info": {context.step_name: threading.current_thread().name}}


def flaky(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Fails on its first call per workflow and task, then returns its attempt number."""
    with _LOCK:
        calls = CALLS[context.workflow_id]
        calls.append(context.step_name)
        first = calls.count(context.step_name) == 1
    if first:
        raise ConnectionError(f"{context.step_name}: service unavailable")
    return {"info": {context.step_name: context.attempt}}


def finish(state: ParallelState, context: StepContext) -> dict[str, Any]:
    return {"finished": True}


def write(config: ConfigDir, workflow_type: str, **keys: Any) -> None:
    """Write a workflow with the PARALLEL step ``FanOut`` (``automate_next``, plus ``keys``)
    followed by ``Finish``, on :class:`ParallelState`."""
    step = {"name": "FanOut", "type": "PARALLEL", "automate_next": True, **keys}
    steps = [step, {"name": "Finish", "function": f"{P}.finish"}]
    text = yaml.safe_dump(steps, sort_keys=False)
    config.write(workflow_type, workflow(workflow_type, text, state_model=f"{P}.ParallelState"))


def tasks(function: str, *names: str) -> list[dict[str, str]]:
    """Declared tasks ``names``, each running the function ``function`` of this module."""
    return [{"name": name, "function": f"{P}.{function}"} for name in names]
