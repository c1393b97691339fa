"""``dispatch_parallel_tasks`` on every provider: results, error outcomes, time limits, the
state copies and the contexts. Concurrency itself is proven in ``test_concurrency.py``."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest

from ruvon.errors import StepResultError
from ruvon.models import StepContext, WorkflowJumpDirective
from ruvon.providers.execution import ExecutionProvider, ParallelTask, isolated_state
from tests.execution.support import by_name, context_for, dispatch
from tests.support.order_steps import OrderState


def ok(state: Any, context: StepContext) -> dict[str, Any]:
    return {"done": context.step_name}


async def ok_async(state: Any, context: StepContext) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"done": context.step_name}


def nothing(state: Any, context: StepContext) -> None:
    return None


def model(state: Any, context: StepContext) -> OrderState:
    return OrderState(order_id="M1", amount=3)


def boom(state: Any, context: StepContext) -> dict[str, Any]:
    raise ValueError("boom")


async def boom_async(state: Any, context: StepContext) -> dict[str, Any]:
    raise KeyError("missing")


def not_a_dict(state: Any, context: StepContext) -> str:
    return "nope"


def jump(state: Any, context: StepContext) -> dict[str, Any]:
    raise WorkflowJumpDirective("Elsewhere")


async def test_results_go_through_step_result(provider: ExecutionProvider) -> None:
    outcomes = await dispatch(
        provider, ("Plain", ok), ("Async", ok_async), ("None", nothing), ("Model", model)
    )

    assert [outcome.name for outcome in outcomes] == ["Plain", "Async", "None", "Model"]
    assert [outcome.error for outcome in outcomes] == [None] * 4
    assert [outcome.result for outcome in outcomes] == [
        {"done": "Plain"},
        {"done": "Async"},
        {},
        OrderState(order_id="M1", amount=3).model_dump(),
    ]
    assert all(outcome.duration_ms >= 0 for outcome in outcomes)


async def test_failing_tasks_are_error_outcomes_and_the_others_succeed(
    provider: ExecutionProvider,
) -> None:
    outcomes = by_name(
        await dispatch(
            provider,
            ("Raises", boom),
            ("First", ok),
            ("RaisesAsync", boom_async),
            ("NotADict", not_a_dict),
            ("Jumps", jump),
            ("Last", ok_async),
        )
    )

    assert outcomes["First"].result == {"done": "First"}
    assert outcomes["Last"].result == {"done": "Last"}
    assert outcomes["First"].error is outcomes["Last"].error is None

    raised = outcomes["Raises"].error
    assert isinstance(raised, ValueError) and str(raised) == "boom"
    assert isinstance(outcomes["RaisesAsync"].error, KeyError)
    # A directive is an exception like any other here: what it means is the engine's business.
    assert isinstance(outcomes["Jumps"].error, WorkflowJumpDirective)
    wrong = outcomes["NotADict"].error
    assert isinstance(wrong, StepResultError)
    assert wrong.step_name == "NotADict" and "returned str" in str(wrong)
    for name in ("Raises", "RaisesAsync", "NotADict", "Jumps"):
        assert outcomes[name].result is None


async def test_a_coroutine_that_does_not_finish_in_time_is_a_timeout(
    provider: ExecutionProvider,
) -> None:
    never = asyncio.Event()
    cancelled: list[str] = []

    async def stuck(state: Any, context: StepContext) -> dict[str, Any]:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(context.step_name)
            raise
        return {"never": True}

    outcomes = await dispatch(provider, ("Stuck", stuck), ("Quick", ok), timeout_seconds=0.05)

    assert [outcome.name for outcome in outcomes] == ["Stuck", "Quick"]
    assert isinstance(outcomes[0].error, TimeoutError)
    assert "Stuck" in str(outcomes[0].error)
    assert outcomes[0].result is None
    assert outcomes[1].result == {"done": "Quick"} and outcomes[1].error is None
    assert cancelled == ["Stuck"]


async def test_a_plain_function_that_overruns_is_a_timeout_even_inline(
    provider: ExecutionProvider,
) -> None:
    # Inline, the function cannot be interrupted: it runs to its end, and its result is
    # discarded because it came too late. On a thread, the caller stops waiting for it.
    def overruns(state: Any, context: StepContext) -> dict[str, Any]:
        threading.Event().wait(0.3)  # never set: returns after its own timeout
        return {"late": True}

    outcomes = await dispatch(provider, ("Slow", overruns), ("Quick", ok), timeout_seconds=0.02)

    assert isinstance(outcomes[0].error, TimeoutError)
    assert outcomes[0].result is None
    assert outcomes[1].result == {"done": "Quick"}


async def test_a_task_raising_timeout_error_itself_keeps_its_own_error(
    provider: ExecutionProvider,
) -> None:
    def upstream(state: Any, context: StepContext) -> dict[str, Any]:
        raise TimeoutError("the upstream service timed out")

    outcomes = await dispatch(provider, ("Upstream", upstream), timeout_seconds=30)

    # (asyncio re-creates a TimeoutError that crosses from a thread, with the same message.)
    assert isinstance(outcomes[0].error, TimeoutError)
    assert str(outcomes[0].error) == "the upstream service timed out"


@pytest.mark.parametrize("timeout", [0, -1.5])
async def test_a_time_limit_must_be_positive(provider: ExecutionProvider, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout_seconds must be positive"):
        await dispatch(provider, ("Plain", ok), timeout_seconds=timeout)


async def test_no_tasks_no_outcomes(provider: ExecutionProvider) -> None:
    assert await dispatch(provider) == []


async def test_each_task_gets_its_own_copy_of_a_dict_state(provider: ExecutionProvider) -> None:
    state: dict[str, Any] = {"items": [1], "nested": {"level": {"value": "kept"}}}
    before = copy.deepcopy(state)
    received: list[Any] = []

    def mutate(state: dict[str, Any], context: StepContext) -> dict[str, Any]:
        received.append(state)
        state["items"].append(context.step_name)
        state["nested"]["level"]["value"] = context.step_name
        state["added"] = True
        return {"items": list(state["items"])}

    outcomes = await dispatch(provider, ("A", mutate), ("B", mutate), state=state)

    assert state == before
    # Neither task saw the other's changes.
    assert [outcome.result for outcome in outcomes] == [{"items": [1, "A"]}, {"items": [1, "B"]}]
    assert len({id(copied) for copied in received}) == 2
    assert all(copied is not state for copied in received)


async def test_each_task_gets_its_own_copy_of_a_model_state(provider: ExecutionProvider) -> None:
    state = OrderState(order_id="S1", amount=5, visited=["Start"])
    before = state.model_dump()
    seen: list[dict[str, Any]] = []

    async def mutate(state: OrderState, context: StepContext) -> dict[str, Any]:
        seen.append(state.model_dump())
        state.visited.append(context.step_name)
        state.amount = 99
        return {"visited": state.visited}

    outcomes = await dispatch(provider, ("A", mutate), ("B", mutate), state=state)

    assert state.model_dump() == before
    assert seen == [before, before]
    assert [outcome.result for outcome in outcomes] == [
        {"visited": ["Start", "A"]},
        {"visited": ["Start", "B"]},
    ]


def test_isolated_state_copies_deeply() -> None:
    state = OrderState(order_id="S2", visited=["x"])
    copied = isolated_state(state)
    assert copied == state and copied is not state and copied.visited is not state.visited
    plain = {"a": [1]}
    assert isolated_state(plain)["a"] is not plain["a"]


async def test_each_task_gets_its_context_and_keyword_arguments(
    provider: ExecutionProvider,
) -> None:
    def show(state: Any, context: StepContext, **kwargs: Any) -> dict[str, Any]:
        return {"step": context.step_name, "workflow": context.workflow_id, "kwargs": kwargs}

    made: list[str] = []

    def factory(task: ParallelTask) -> StepContext:
        made.append(task.name)
        return context_for(task)

    outcomes = await provider.dispatch_parallel_tasks(
        [ParallelTask("A", show, {"region": "eu"}), ParallelTask("B", show)], {}, factory
    )

    assert sorted(made) == ["A", "B"]
    assert [outcome.result for outcome in outcomes] == [
        {"step": "A", "workflow": "wf-parallel", "kwargs": {"region": "eu"}},
        {"step": "B", "workflow": "wf-parallel", "kwargs": {}},
    ]


async def test_a_failing_context_factory_is_that_task_s_error(
    provider: ExecutionProvider,
) -> None:
    def factory(task: ParallelTask) -> StepContext:
        if task.name == "Broken":
            raise RuntimeError("no context")
        return context_for(task)

    outcomes = await provider.dispatch_parallel_tasks(
        [ParallelTask("Broken", ok), ParallelTask("Fine", ok)], {}, factory
    )

    assert isinstance(outcomes[0].error, RuntimeError)
    assert outcomes[1].result == {"done": "Fine"}
