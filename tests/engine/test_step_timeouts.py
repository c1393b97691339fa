"""``timeout_seconds`` on function steps, on every store: a plain function is bounded like a
coroutine (it runs on a worker thread), the stored error names the step and the limit, the
retry policy retries a timeout, what a given-up attempt returns later is discarded, and a
step function's own ``TimeoutError`` stays what it is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ruvon import RuvonError, StepTimeoutError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support import timeout_steps
from tests.support.config import ConfigDir, audit_log, workflow
from tests.support.timeout_steps import T


@pytest.fixture(autouse=True)
async def release_slow_steps() -> AsyncIterator[None]:
    """Async, so that it ends before the event loop closes (and joins the worker threads)."""
    timeout_steps.RELEASE.clear()
    timeout_steps.LATE_RETURNED.clear()
    yield
    timeout_steps.RELEASE.set()


def write(config: ConfigDir, function: str, **keys: Any) -> WorkflowBuilder:
    """Write ``Slow``: the step ``Charge`` running ``function`` with ``keys``, then ``Done``."""
    lines = [f"- name: Charge\n  function: {T}.{function}"]
    lines += [f"  {key}: {value}" for key, value in keys.items()]
    lines.append(f"- name: Done\n  function: {T}.quick")
    config.write("Slow", workflow("Slow", "\n".join(lines)))
    return config.builder()


@pytest.mark.parametrize("function", ["slow_plain", "slow_async"])
async def test_a_step_that_runs_too_long_fails_with_the_step_and_the_limit(
    config: ConfigDir, persistence: PersistenceProvider, fresh: WorkflowBuilder, function: str
) -> None:
    write(config, function, timeout_seconds=0.2)
    wf = await config.builder(persistence).create_workflow("Slow", {"order_id": "T1"})

    with pytest.raises(StepTimeoutError, match=r"^Step 'Charge' timed out after 0.2 s$") as caught:
        await wf.next_step()

    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, RuvonError)
    assert (error.step_name, error.timeout_seconds) == ("Charge", 0.2)
    assert timeout_steps.CALLS[wf.id] == [1]
    loaded = await fresh.load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.current_step == "Charge"
    assert loaded.error_message == "StepTimeoutError: Step 'Charge' timed out after 0.2 s"
    failed = [e for e in await audit_log(persistence, wf.id) if e.event_type == "STEP_FAILED"]
    assert [e.data for e in failed] == [
        {"error": "Step 'Charge' timed out after 0.2 s", "error_type": "StepTimeoutError"}
    ]


@pytest.mark.parametrize("function", ["slow_plain", "slow_async"])
async def test_the_retry_policy_retries_a_timeout(
    config: ConfigDir, persistence: PersistenceProvider, fresh: WorkflowBuilder, function: str
) -> None:
    write(config, function, timeout_seconds=0.1, retry_policy="{max_attempts: 3, delay: 0}")
    wf = await config.builder(persistence).create_workflow("Slow", {"order_id": "T1"})

    with pytest.raises(StepTimeoutError):
        await wf.next_step()

    assert timeout_steps.CALLS[wf.id] == [1, 2, 3]
    loaded = await fresh.load_workflow(wf.id)
    assert loaded.error_message == "StepTimeoutError: Step 'Charge' timed out after 0.1 s"


async def test_a_retry_after_a_timeout_succeeds_and_the_late_result_is_discarded(
    config: ConfigDir, persistence: PersistenceProvider, fresh: WorkflowBuilder
) -> None:
    write(
        config,
        "slow_first_attempt",
        timeout_seconds=0.2,
        retry_policy="{max_attempts: 2, delay: 0}",
    )
    wf = await config.builder(persistence).create_workflow("Slow", {"order_id": "T1"})

    await wf.next_step()

    assert wf.state.note == "attempt 2"
    # The first attempt's thread still runs; once it returns, nothing takes its result.
    timeout_steps.RELEASE.set()
    assert await asyncio.to_thread(timeout_steps.LATE_RETURNED.wait, timeout_steps.BLOCK_LIMIT)
    assert timeout_steps.FINISHED[wf.id] == [2, 1]
    await wf.next_step()
    loaded = await fresh.load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.COMPLETED
    assert loaded.state.attempts == [2]
    assert loaded.state.note == "quick"


async def test_a_step_function_s_own_timeout_error_is_not_a_step_timeout(
    config: ConfigDir, persistence: PersistenceProvider, fresh: WorkflowBuilder
) -> None:
    write(config, "own_timeout", timeout_seconds=5)
    wf = await config.builder(persistence).create_workflow("Slow", {"order_id": "T1"})

    with pytest.raises(TimeoutError, match=r"^upstream too slow$") as caught:
        await wf.next_step()

    assert not isinstance(caught.value, StepTimeoutError)
    loaded = await fresh.load_workflow(wf.id)
    assert loaded.error_message == "TimeoutError: upstream too slow"


async def test_a_plain_function_within_its_timeout_runs_on_a_worker_thread(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    config.write(
        "Quick",
        workflow(
            "Quick",
            f"""
            - name: Fast
              function: {T}.quick
              timeout_seconds: 5
            """,
        ),
    )
    wf = await config.builder(persistence).create_workflow("Quick", {"order_id": "T1"})

    await wf.next_step(user_input={"label": "given"})

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.note == "given"
    (thread_name,) = wf.state.visited
    assert thread_name != "MainThread"
