"""ThreadPoolExecutionProvider: where functions run, the pool's lifecycle (lazy creation,
close() joining the threads, initializing again), and a real workflow on it."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path
from typing import Any

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import StepResultError
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.execution.thread_pool import (
    THREAD_NAME_PREFIX,
    ThreadPoolExecutionProvider,
)
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.models import StepContext
from ruvon.providers.execution import AsyncTask, ExecutionProvider
from tests.execution.support import GUARD_SECONDS, STEPS, dispatch
from tests.support.config import ConfigDir, workflow
from tests.support.order_steps import OrderState
from tests.support.workflows import WORKFLOWS

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

CONTEXT = StepContext(workflow_id="wf-pool", step_name="Step")


def where(state: Any, context: StepContext, **user_input: Any) -> dict[str, Any]:
    return {"thread": threading.current_thread(), "input": user_input}


async def where_async(state: Any, context: StepContext) -> dict[str, Any]:
    return {"thread": threading.current_thread()}


def test_both_providers_fulfil_the_protocol() -> None:
    assert isinstance(ThreadPoolExecutionProvider(), ExecutionProvider)
    assert isinstance(SyncExecutionProvider(), ExecutionProvider)


@pytest.mark.parametrize("workers", [0, -2])
def test_max_workers_must_be_positive(workers: int) -> None:
    with pytest.raises(ValueError, match="max_workers must be at least 1"):
        ThreadPoolExecutionProvider(max_workers=workers)


async def test_plain_functions_run_on_the_pool_and_coroutines_on_the_loop(
    pool: ThreadPoolExecutionProvider,
) -> None:
    plain = await pool.execute_sync_step_function(where, {}, CONTEXT, customer="Ann")
    assert plain["thread"].name.startswith(THREAD_NAME_PREFIX)
    assert plain["input"] == {"customer": "Ann"}

    coroutine = await pool.execute_sync_step_function(where_async, {}, CONTEXT)
    assert coroutine["thread"] is threading.current_thread()


async def test_results_and_errors_of_one_step(pool: ThreadPoolExecutionProvider) -> None:
    def none(state: Any, context: StepContext) -> None:
        return None

    def tuple_result(state: Any, context: StepContext) -> Any:
        return ({"a": 1}, 200)

    def fails(state: Any, context: StepContext) -> dict[str, Any]:
        raise LookupError("not there")

    assert await pool.execute_sync_step_function(none, {}, CONTEXT) == {}
    with pytest.raises(StepResultError, match="Step 'Step' returned tuple"):
        await pool.execute_sync_step_function(tuple_result, {}, CONTEXT)
    with pytest.raises(LookupError, match="not there"):
        await pool.execute_sync_step_function(fails, {}, CONTEXT)


async def test_plain_functions_see_the_callers_context_variables(
    pool: ThreadPoolExecutionProvider,
) -> None:
    def read(state: Any, context: StepContext) -> dict[str, Any]:
        return {"request": REQUEST_ID.get()}

    token = REQUEST_ID.set("req-7")
    try:
        assert await pool.execute_sync_step_function(read, {}, CONTEXT) == {"request": "req-7"}
        outcomes = await dispatch(pool, ("Read", read))
    finally:
        REQUEST_ID.reset(token)
    assert outcomes[0].result == {"request": "req-7"}


async def test_an_async_task_runs_now_and_returns_its_result(
    pool: ThreadPoolExecutionProvider,
) -> None:
    task = AsyncTask(
        workflow_id="wf-pool",
        workflow_type="Tests",
        step_name="Step",
        step_index=0,
        function_path="tests.execution.test_thread_pool.where",
        state={},
        expected_version=1,
        user_input={"channel": "email"},
    )
    result = await pool.dispatch_async_task(task, where, {}, CONTEXT)
    assert isinstance(result, dict)
    assert result["input"] == {"channel": "email"}
    assert result["thread"].name.startswith(THREAD_NAME_PREFIX)


async def test_the_pool_is_created_on_first_use() -> None:
    provider = ThreadPoolExecutionProvider()
    assert provider.executor is None
    try:
        result = await provider.execute_sync_step_function(where, {}, CONTEXT)
        assert result["thread"].name.startswith(THREAD_NAME_PREFIX)
        assert provider.executor is not None
    finally:
        await provider.close()


async def test_initialize_is_idempotent_and_close_joins_the_threads() -> None:
    provider = ThreadPoolExecutionProvider(max_workers=2)
    await provider.initialize()
    executor = provider.executor
    await provider.initialize()
    assert provider.executor is executor

    # Two tasks that meet at a barrier: the pool has started two threads.
    barrier = threading.Barrier(2, timeout=GUARD_SECONDS)
    used: list[threading.Thread] = []

    def meet(state: Any, context: StepContext) -> dict[str, Any]:
        used.append(threading.current_thread())
        barrier.wait()
        return {}

    outcomes = await dispatch(provider, ("A", meet), ("B", meet))
    assert [outcome.error for outcome in outcomes] == [None, None]
    assert len(set(used)) == 2

    await provider.close()
    assert provider.executor is None
    alive = threading.enumerate()
    assert not any(thread in alive for thread in used)
    assert not any(thread.is_alive() for thread in used)
    await provider.close()  # idempotent

    # Initialized again, it works on new threads, which close() joins as well.
    await provider.initialize()
    again = await provider.execute_sync_step_function(where, {}, CONTEXT)
    assert again["thread"] not in used
    await provider.close()
    assert again["thread"] not in threading.enumerate()


async def test_close_waits_for_the_functions_still_running() -> None:
    provider = ThreadPoolExecutionProvider(max_workers=1)
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()
    finished: list[str] = []

    def blocking(state: Any, context: StepContext) -> dict[str, Any]:
        loop.call_soon_threadsafe(started.set)
        assert release.wait(GUARD_SECONDS)
        finished.append(context.step_name)
        return {}

    step = asyncio.create_task(provider.execute_sync_step_function(blocking, {}, CONTEXT))
    await started.wait()
    closing = asyncio.create_task(provider.close())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not closing.done()  # the function still holds its thread

    release.set()
    await closing
    assert finished == ["Step"]
    assert await step == {}


async def test_a_timed_out_plain_task_keeps_its_thread_until_it_returns(
    pool: ThreadPoolExecutionProvider,
) -> None:
    release = threading.Event()

    def stuck(state: Any, context: StepContext) -> dict[str, Any]:
        release.wait(GUARD_SECONDS)
        return {"late": True}

    try:
        outcomes = await dispatch(pool, ("Stuck", stuck), timeout_seconds=0.05)
    finally:
        release.set()  # let the thread go, so that the fixture's close() can join it
    assert isinstance(outcomes[0].error, TimeoutError)
    assert outcomes[0].result is None


async def test_cancelling_a_dispatch_cancels_its_coroutine_tasks(
    pool: ThreadPoolExecutionProvider,
) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def waits(state: Any, context: StepContext) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(context.step_name)
            raise
        return {}

    call = asyncio.create_task(dispatch(pool, ("Waits", waits)))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert cancelled == ["Waits"]


# -- a workflow on the pool ------------------------------------------------------------------


async def test_a_workflow_runs_on_the_thread_pool(
    tmp_path: Path, memory_store: MemoryPersistenceProvider
) -> None:
    config = ConfigDir(tmp_path / "config")
    config.write_all(WORKFLOWS)
    config.write(
        "Threads",
        workflow(
            "Threads",
            f"""
            - name: Plain
              function: {STEPS}.note_thread
            - name: Coroutine
              function: {STEPS}.greet_from_thread
            """,
        ),
    )
    provider = ThreadPoolExecutionProvider(max_workers=2)
    builder = config.builder(memory_store, execution_provider=provider)
    try:
        standard = await builder.create_workflow(
            "Standard", {"order_id": "P1", "amount": 7, "customer": "Ann"}
        )
        assert await standard.run() is WorkflowStatus.COMPLETED
        assert standard.state.visited == ["Validate", "Charge"]
        assert standard.state.charged == 7

        threads = await builder.create_workflow("Threads", {"order_id": "P2"})
        assert await threads.run() is WorkflowStatus.COMPLETED
        assert isinstance(threads.state, OrderState)
        assert threads.state.note is not None
        assert threads.state.note.startswith(THREAD_NAME_PREFIX)
        assert threads.state.greeting == threading.current_thread().name
    finally:
        await builder.close()
        await provider.close()
