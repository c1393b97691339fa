"""Step functions, compensations, input models and the state model of the engine tests.

Workflow files name these by dotted path (``tests.support.order_steps.mark``), exactly as an
application's files name its own functions. Functions that must behave differently per test
(fail a number of times, fail until "fixed") keep their bookkeeping in module-level dicts keyed by
workflow id, so tests never interfere with each other.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, Field

from ruvon.models import StepContext, WorkflowJumpDirective, WorkflowPauseDirective

CALLS: defaultdict[str, list[int]] = defaultdict(list)
"""workflow id -> the ``context.attempt`` of every call of a counting step function."""

FIXED: set[str] = set()
"""Workflow ids whose "inventory service" works again (see :func:`fails_until_fixed`)."""


class OrderState(BaseModel):
    """The state of every test workflow: an order and what the steps did to it."""

    order_id: str
    amount: int = 0
    customer: str = "anonymous"
    visited: list[str] = Field(default_factory=list)
    counter: int = 0
    score: int | None = None
    greeting: str | None = None
    seen_kwargs: list[str] = Field(default_factory=list)
    charged: int | None = None
    note: str | None = None
    approved: bool | None = None
    approver: str | None = None
    input_type: str | None = None
    reviewer: str | None = None
    review_requested: bool = False
    previous: dict[str, Any] | None = None
    attempts: list[int] = Field(default_factory=list)
    reserved: bool = False
    compensations: list[str] = Field(default_factory=list)


class ApprovalInput(BaseModel):
    """What a person sends to the ``Approve`` step."""

    approved: bool
    approver: str = Field(min_length=1)


class ReviewInput(BaseModel):
    """What a reviewer sends after a pause."""

    reviewer: str = Field(min_length=1)


class NotAModel:
    """Named as a state model by a broken workflow file."""


def _visit(state: OrderState, context: StepContext) -> list[str]:
    return [*state.visited, context.step_name]


# -- STANDARD ------------------------------------------------------------------------------


def mark(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Record that the step ran."""
    return {"visited": _visit(state, context)}


def mark_shouting(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Record that the step ran, in capitals (the "new version" of :func:`mark`)."""
    return {"visited": [*state.visited, context.step_name.upper()]}


def mark_with_junk(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Return a key that is not a field of the state: the merge drops it."""
    return {"visited": _visit(state, context), "not_a_field": 42}


async def charge_async(state: OrderState, context: StepContext) -> dict[str, Any]:
    """An ``async def`` step function."""
    return {"charged": state.amount, "visited": _visit(state, context)}


def return_none(state: OrderState, context: StepContext) -> None:
    """A step that returns nothing."""


def mutate_in_place(state: OrderState, context: StepContext) -> None:
    """Change the state directly and return nothing: the change is kept (spec ST-02)."""
    state.note = "changed in place"


def greet(
    state: OrderState, context: StepContext, customer: str = "World", punctuation: str = "!"
) -> dict[str, Any]:
    """Declared keyword parameters come from the user input, else from same-named fields."""
    return {"greeting": f"Hello {customer}{punctuation}"}


def collect_kwargs(state: OrderState, context: StepContext, **kwargs: Any) -> dict[str, Any]:
    """Accepts any keyword: receives the whole user input."""
    return {"seen_kwargs": sorted(kwargs)}


def remember_previous(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Store what the step was told about the previous step's result."""
    return {"previous": context.previous_step_result, "visited": _visit(state, context)}


# -- DECISION and jumps ---------------------------------------------------------------------


def score(state: OrderState, context: StepContext) -> dict[str, Any]:
    """The result the routes of a DECISION step look at."""
    return {"score": state.amount * 2, "visited": _visit(state, context)}


def jump_to_finish(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Jump forward to ``Finish`` with a result."""
    raise WorkflowJumpDirective(
        "Finish", result={"note": "jumped", "visited": _visit(state, context)}
    )


def jump_nowhere(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Jump to a step that does not exist."""
    raise WorkflowJumpDirective("Nowhere")


def loop_back_once(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Jump back to ``Work`` until ``counter`` reaches 2."""
    counter = state.counter + 1
    result = {"counter": counter, "visited": _visit(state, context)}
    if counter < 2:
        raise WorkflowJumpDirective(target_step="Work", result=result)
    return result


# -- waiting --------------------------------------------------------------------------------


def pause_for_review(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Pause the workflow; the result is kept."""
    raise WorkflowPauseDirective(
        result={"review_requested": True, "visited": _visit(state, context)},
        waiting_for="review",
    )


def record_review(
    state: OrderState, context: StepContext, reviewer: str | None = None
) -> dict[str, Any]:
    """The step after a pause receives the resuming input."""
    return {"reviewer": reviewer, "visited": _visit(state, context)}


def approve(
    state: OrderState,
    context: StepContext,
    approved: bool = False,
    approver: str | None = None,
) -> dict[str, Any]:
    """A human step's function: gets the input as keywords and validated in the context."""
    return {
        "approved": approved,
        "approver": approver,
        "input_type": type(context.validated_input).__name__,
        "visited": _visit(state, context),
    }


# -- failures -------------------------------------------------------------------------------


def flaky_until_third(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Fail on the first two attempts, succeed on the third."""
    CALLS[context.workflow_id].append(context.attempt)
    if context.attempt < 3:
        raise ConnectionError(f"attempt {context.attempt} timed out")
    return {"attempts": list(CALLS[context.workflow_id]), "visited": _visit(state, context)}


def always_fails(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Fail every time."""
    CALLS[context.workflow_id].append(context.attempt)
    raise RuntimeError("card declined")


def fails_until_fixed(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Fail until the test puts the workflow's id in :data:`FIXED`."""
    if context.workflow_id not in FIXED:
        raise LookupError("inventory service unavailable")
    return {"visited": _visit(state, context)}


def bad_amount(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Return a value of the wrong type for ``amount``: the merged state is invalid."""
    return {"amount": "a lot", "note": "should never be stored"}


def dirty_then_fail(state: OrderState, context: StepContext) -> dict[str, Any]:
    """Change the state in place, then fail: the change must not survive."""
    state.note = "dirty"
    state.visited.append("dirty")
    raise RuntimeError("failed after touching the state")


# -- saga -----------------------------------------------------------------------------------


def reserve_stock(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"reserved": True, "visited": _visit(state, context)}


def release_stock(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"reserved": False, "compensations": [*state.compensations, "release_stock"]}


def charge_card(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"charged": state.amount, "visited": _visit(state, context)}


def refund_card(state: OrderState, context: StepContext) -> dict[str, Any]:
    return {"charged": 0, "compensations": [*state.compensations, "refund_card"]}


def refund_unavailable(state: OrderState, context: StepContext) -> dict[str, Any]:
    raise RuntimeError("refund service unavailable")


def ship_order(state: OrderState, context: StepContext) -> dict[str, Any]:
    raise RuntimeError("no truck available")


# -- for the definition tests ----------------------------------------------------------------


def only_state(state: OrderState) -> dict[str, Any]:
    """A function that cannot take ``(state, context)``."""
    return {}


NOT_CALLABLE = 42


def pause_here(state: Any, context: StepContext) -> dict[str, Any]:
    """Pause the workflow; works with any state type."""
    raise WorkflowPauseDirective(result={"asked": True}, waiting_for="answer")


def must_not_run(state: Any, context: StepContext) -> dict[str, Any]:
    """A step that a correct workflow never reaches."""
    raise AssertionError(f"step {context.step_name} must not run")
