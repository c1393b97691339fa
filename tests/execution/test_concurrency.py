"""Who runs at the same time: the thread pool starts every task of a parallel dispatch at
once, the sync provider runs them one after another. Proven with barriers and events, which
only complete (or only time out) when the tasks really overlap (or really do not)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.models import StepContext
from tests.execution.support import GUARD_SECONDS, dispatch

# -- the thread pool: everything at once -----------------------------------------------------


async def test_plain_tasks_wait_for_each_other_on_the_pool(
    pool: ThreadPoolExecutionProvider,
) -> None:
    # Each task waits until the other one has arrived: possible only on two threads at once.
    barrier = threading.Barrier(2, timeout=GUARD_SECONDS)
    threads: list[str] = []

    def meet(state: Any, context: StepContext) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        barrier.wait()
        return {"met": context.step_name}

    outcomes = await dispatch(pool, ("A", meet), ("B", meet))

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert [outcome.result for outcome in outcomes] == [{"met": "A"}, {"met": "B"}]
    assert len(set(threads)) == 2
    assert threading.current_thread().name not in threads


async def test_coroutine_tasks_wait_for_each_other_on_the_pool(
    pool: ThreadPoolExecutionProvider,
) -> None:
    arrived = {"A": asyncio.Event(), "B": asyncio.Event()}
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []

    async def meet(state: Any, context: StepContext) -> dict[str, Any]:
        threads.append(threading.current_thread())
        arrived[context.step_name].set()
        other = "B" if context.step_name == "A" else "A"
        await arrived[other].wait()
        return {"met": other}

    outcomes = await dispatch(pool, ("A", meet), ("B", meet), timeout_seconds=GUARD_SECONDS)

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert [outcome.result for outcome in outcomes] == [{"met": "B"}, {"met": "A"}]
    assert threads == [loop_thread, loop_thread]  # coroutines run on the event loop


async def test_a_plain_and_a_coroutine_task_overlap_on_the_pool(
    pool: ThreadPoolExecutionProvider,
) -> None:
    loop = asyncio.get_running_loop()
    plain_arrived = asyncio.Event()
    coroutine_arrived = threading.Event()

    def plain(state: Any, context: StepContext) -> dict[str, Any]:
        loop.call_soon_threadsafe(plain_arrived.set)
        assert coroutine_arrived.wait(GUARD_SECONDS)
        return {"side": "thread"}

    async def coroutine(state: Any, context: StepContext) -> dict[str, Any]:
        coroutine_arrived.set()
        await plain_arrived.wait()
        return {"side": "loop"}

    outcomes = await dispatch(
        pool, ("Plain", plain), ("Coroutine", coroutine), timeout_seconds=GUARD_SECONDS
    )

    assert [outcome.result for outcome in outcomes] == [{"side": "thread"}, {"side": "loop"}]


@pytest.mark.parametrize("kind", ["plain", "coroutine"])
async def test_outcomes_keep_the_declared_order_when_tasks_finish_in_reverse(
    pool: ThreadPoolExecutionProvider, kind: str
) -> None:
    # C finishes first, then B, then A: each waits for the one declared after it.
    finished: list[str] = []
    following = {"A": "B", "B": "C"}

    if kind == "plain":
        done = {name: threading.Event() for name in "ABC"}

        def task(state: Any, context: StepContext) -> dict[str, Any]:
            name = context.step_name
            if name in following:
                assert done[following[name]].wait(GUARD_SECONDS)
            finished.append(name)
            done[name].set()
            return {"name": name}

        func: Any = task
    else:
        signals = {name: asyncio.Event() for name in "ABC"}

        async def async_task(state: Any, context: StepContext) -> dict[str, Any]:
            name = context.step_name
            if name in following:
                await signals[following[name]].wait()
            finished.append(name)
            signals[name].set()
            return {"name": name}

        func = async_task

    outcomes = await dispatch(
        pool, ("A", func), ("B", func), ("C", func), timeout_seconds=GUARD_SECONDS
    )

    assert finished == ["C", "B", "A"]
    assert [outcome.name for outcome in outcomes] == ["A", "B", "C"]
    assert [outcome.result for outcome in outcomes] == [{"name": n} for n in "ABC"]


# -- the sync provider: one after another ----------------------------------------------------


@pytest.mark.parametrize("in_thread", [False, True], ids=["inline", "in-thread"])
async def test_the_sync_provider_never_runs_two_tasks_at_once(in_thread: bool) -> None:
    # The same meeting as on the pool: run one after another, the first task waits in vain
    # (its barrier times out and breaks), and the second finds the barrier broken.
    provider = SyncExecutionProvider(run_sync_in_thread=in_thread)
    barrier = threading.Barrier(2, timeout=0.2)

    def meet(state: Any, context: StepContext) -> dict[str, Any]:
        barrier.wait()
        return {"met": context.step_name}

    outcomes = await dispatch(provider, ("A", meet), ("B", meet))

    assert [type(outcome.error) for outcome in outcomes] == [threading.BrokenBarrierError] * 2


async def test_the_sync_provider_runs_coroutine_tasks_one_after_another(
    sync_provider: SyncExecutionProvider,
) -> None:
    # A waits for B, which only starts once A is over: A times out, then B finds A's signal.
    arrived = {"A": asyncio.Event(), "B": asyncio.Event()}

    async def meet(state: Any, context: StepContext) -> dict[str, Any]:
        arrived[context.step_name].set()
        other = "B" if context.step_name == "A" else "A"
        await arrived[other].wait()
        return {"met": other}

    outcomes = await dispatch(sync_provider, ("A", meet), ("B", meet), timeout_seconds=0.2)

    assert isinstance(outcomes[0].error, TimeoutError)
    assert outcomes[1].result == {"met": "A"}


async def test_the_sync_provider_finishes_each_task_before_the_next_starts(
    sync_provider: SyncExecutionProvider,
) -> None:
    log: list[str] = []

    async def first(state: Any, context: StepContext) -> dict[str, Any]:
        log.append("first started")
        for _ in range(5):  # hand the loop over: a concurrent task would run now
            await asyncio.sleep(0)
        log.append("first finished")
        return {}

    def second(state: Any, context: StepContext) -> dict[str, Any]:
        if log != ["first started", "first finished"]:
            raise AssertionError(f"second started after {log}")
        log.append("second ran")
        return {}

    outcomes = await dispatch(sync_provider, ("First", first), ("Second", second))

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert log == ["first started", "first finished", "second ran"]
