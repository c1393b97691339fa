"""PARALLEL tasks fanned out (an execution provider with ``remote_parallel_tasks``): the run is
committed PENDING_ASYNC with a token per task before any task is sent, the caller is free at
once, each task runs as a dispatched unit of its own (the test plays the workers with
``run_dispatched_step``, in any order and at the same time from separate stores), and the
report that completes the set merges exactly like the in-process path — once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ruvon import WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.errors import ParallelExecutionError
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.models import StepContext
from ruvon.providers.execution import (
    AsyncTask,
    StepFunction,
    TaskDispatched,
)
from ruvon.providers.persistence import PersistenceProvider
from ruvon.serialization import jsonable
from ruvon.workflow import Workflow
from tests.support import parallel_steps
from tests.support.config import ConfigDir, audit_log
from tests.support.parallel_steps import QUOTES, P, ParallelState, tasks, write

T = __name__
"""This module, as workflow files name it."""

RUNS: dict[str, list[str]] = defaultdict(list)
"""workflow id -> the tasks the functions of this module ran, in call order."""
MEETING: dict[str, tuple[int, asyncio.Event]] = {}
"""workflow id -> (how many tasks :func:`meet_and_quote` waits for, the event they meet at)."""
ARRIVED: dict[str, int] = defaultdict(int)


def counted_quote(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """``parallel_steps.quote``, counted."""
    RUNS[context.workflow_id].append(context.step_name)
    return parallel_steps.quote(state, context)


async def meet_and_quote(state: ParallelState, context: StepContext) -> dict[str, Any]:
    """Waits until every task of the fan-out runs (each worker has loaded the run at the same
    version), then quotes: the reports race for real."""
    RUNS[context.workflow_id].append(context.step_name)
    meeting = MEETING.get(context.workflow_id)
    if meeting is not None:
        expected, everyone = meeting
        ARRIVED[context.workflow_id] += 1
        if ARRIVED[context.workflow_id] == expected:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), parallel_steps.WAIT)
    return QUOTES[context.step_name]


def counted(*names: str) -> list[dict[str, str]]:
    """Declared tasks running :func:`counted_quote`."""
    return [{"name": name, "function": f"{T}.counted_quote"} for name in names]


class FanOutProvider(SyncExecutionProvider):
    """Sends the tasks of PARALLEL steps away: records each ``AsyncTask`` and answers
    ``TaskDispatched``; everything else runs here, as on ``SyncExecutionProvider``."""

    remote_parallel_tasks = True

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[AsyncTask] = []

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        self.sent.append(task)
        return TaskDispatched(task.token)

    def take(self) -> list[AsyncTask]:
        """The tasks sent since the last call."""
        sent, self.sent = self.sent, []
        return sent


class AtOnceProvider(FanOutProvider):
    """Runs each task as soon as it is sent and answers its result (or raises its error)."""

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        self.sent.append(task)
        return await SyncExecutionProvider.dispatch_async_task(self, task, func, state, context)


class BackgroundProvider(ThreadPoolExecutionProvider):
    """Runs each task in the background and reports through ``task.report``."""

    remote_parallel_tasks = True


@dataclass
class Env:
    """A config directory, the store under test, and a builder whose PARALLEL tasks are sent
    to the workers the test plays (``provider`` records them)."""

    config: ConfigDir
    store: PersistenceProvider
    provider: FanOutProvider
    builder: WorkflowBuilder

    async def start(self, kind: str, data: Any = None) -> tuple[Workflow, list[AsyncTask]]:
        """Create a run of ``kind``, run it up to its fan-out; the run and the tasks sent."""
        wf = await self.builder.create_workflow(kind, data or {})
        await wf.next_step()
        return wf, self.provider.take()

    async def load(self, workflow_id: str) -> Workflow:
        return await self.config.builder(self.store).load_workflow(workflow_id)

    async def in_process(self, kind: str, data: Any = None) -> Workflow:
        """The same workflow on the in-process path (``SyncExecutionProvider``)."""
        reference = await self.config.builder(self.store).create_workflow(kind, data or {})
        with contextlib.suppress(ParallelExecutionError):
            await reference.next_step()
        return reference

    async def entries(self, workflow_id: str, event_type: str | None = None) -> list[Any]:
        """The step FanOut's audit entries (of one type)."""
        return [
            e
            for e in await audit_log(self.store, workflow_id)
            if e.step_name == "FanOut" and event_type in (None, e.event_type)
        ]


@pytest.fixture
def env(config: ConfigDir, persistence: PersistenceProvider) -> Env:
    provider = FanOutProvider()
    builder = config.builder(persistence, execution_provider=provider)
    return Env(config, persistence, provider, builder)


async def work(builder: WorkflowBuilder, task: AsyncTask) -> bool:
    """What a worker does with a message: the task's ids, token and JSON user input."""
    return await builder.run_dispatched_step(
        task.workflow_id, task.step_index, task.token, user_input=jsonable(dict(task.user_input))
    )


# -- dispatch -------------------------------------------------------------------------------


async def test_the_tasks_are_sent_after_one_commit_and_the_caller_is_free(env: Env) -> None:
    write(env.config, "Quotes", tasks=counted("a", "b", "c"))
    wf = await env.builder.create_workflow("Quotes", {})

    result, current = await wf.next_step()

    assert (result, current, wf.status) == ({}, "FanOut", WorkflowStatus.PENDING_ASYNC)
    assert RUNS[wf.id] == []  # nothing ran here, not even in-process
    stored = await env.store.load_workflow(wf.id)
    assert stored is not None and stored.status == "PENDING_ASYNC"
    sent = env.provider.take()
    entry = stored.progress["fan_out"]["FanOut"]
    assert [t.parallel_task for t in sent] == ["a", "b", "c"]
    assert [[t.parallel_task, t.token] for t in sent] == entry["tasks"]
    assert len({t.token for t in sent}) == 3 and entry["done"] == {}
    assert stored.progress["steps"]["FanOut"] == "dispatched"
    assert "FanOut" in stored.progress["dispatch"]
    for task in sent:
        assert (task.step_name, task.step_index, task.workflow_type) == ("FanOut", 0, "Quotes")
        assert task.function_path == f"{T}.counted_quote"
        assert (task.expected_version, task.state) == (stored.version, stored.state)
        assert (task.user_input, task.timeout_seconds, task.queue) == ({}, None, None)
    dispatched = await env.entries(wf.id)
    assert [(e.event_type, (e.data or {}).get("task_name")) for e in dispatched] == [
        ("STEP_DISPATCHED", "a"),
        ("STEP_DISPATCHED", "b"),
        ("STEP_DISPATCHED", "c"),
    ]
    with pytest.raises(ValueError, match="PENDING_ASYNC"):
        await wf.next_step()


# -- reports in any order -------------------------------------------------------------------


@pytest.mark.parametrize("order", ["declared", "reversed"])
@pytest.mark.parametrize(
    ("strategy", "behavior"),
    [("SHALLOW", "PREFER_NEW"), ("SHALLOW", "PREFER_EXISTING"), ("DEEP", "PREFER_NEW"),
     ("DEEP", "PREFER_EXISTING")],
)  # fmt: skip
async def test_reports_in_any_order_merge_once_like_the_in_process_path(
    env: Env, order: str, strategy: str, behavior: str
) -> None:
    keys = {"merge_strategy": strategy, "merge_conflict_behavior": behavior}
    write(env.config, "Quotes", tasks=counted("a", "b", "c"), **keys)
    wf, sent = await env.start("Quotes")
    worker = env.config.builder(env.store, execution_provider=env.provider)  # another process

    played = sent if order == "declared" else sent[::-1]
    assert await work(worker, played[0]) is True
    assert await work(worker, played[0]) is False  # redelivered: dropped, nothing runs
    assert RUNS[wf.id] == [played[0].parallel_task]
    halfway = await env.store.load_workflow(wf.id)
    assert halfway is not None and halfway.status == "PENDING_ASYNC"
    assert list(halfway.progress["fan_out"]["FanOut"]["done"]) == [played[0].parallel_task]
    for task in played[1:]:
        assert await work(worker, task) is True

    done = await env.load(wf.id)
    reference = await env.in_process("Quotes")
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == reference.state
    assert done.state.finished is True  # automate_next went on after the merge
    assert sorted(RUNS[wf.id]) == ["a", "b", "c"]  # each task ran once
    assert "fan_out" not in done.progress.to_json()
    assert "waiting_for" not in done.metadata
    for task in sent:  # every task again, after the merge: nothing runs, nothing changes
        assert await work(worker, task) is False
        assert await worker.complete_async_step(wf.id, 0, task.token, result={"price": 7}) is False
    assert sorted(RUNS[wf.id]) == ["a", "b", "c"]
    assert (await env.load(wf.id)).version == done.version
    entries = await env.entries(wf.id)
    assert [e.event_type for e in entries] == [
        *["STEP_DISPATCHED"] * 3,
        *["PARALLEL_TASK_REPORTED"] * 2,
        "STEP_EXECUTED",
    ]
    expected = await env.entries(reference.id, "STEP_EXECUTED")
    assert (entries[-1].data or {})["result"] == (expected[0].data or {})["result"]
    points = await env.store.get_workflow_metrics(
        workflow_id=wf.id, metric_name="parallel_task_duration_ms"
    )
    assert sorted((p.tags or {})["task"] for p in points) == ["a", "b", "c"]


# -- reports at the same time ---------------------------------------------------------------


@pytest.fixture
async def other_store(env: Env, tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """Opens another provider on the same database (another process's): a new SQLite provider
    on the file, a new pool on the PostgreSQL schema; the memory store is shared."""
    opened: list[PersistenceProvider] = []

    async def open_one() -> PersistenceProvider:
        store = env.store
        if isinstance(store, SQLitePersistenceProvider):
            assert (tmp_path / "ruvon.db").exists()  # the file of the ``sqlite_store`` fixture
            other: PersistenceProvider = SQLitePersistenceProvider(tmp_path / "ruvon.db")
        elif isinstance(store, PostgresPersistenceProvider):
            other = PostgresPersistenceProvider(
                store.db_url, schema=store.schema, pool_min_size=1, pool_max_size=2
            )
        else:
            return store
        await other.initialize()
        opened.append(other)
        return other

    yield open_one
    for store in opened:
        await store.close()


async def test_workers_reporting_at_the_same_time_merge_once(
    env: Env, other_store: Callable[[], Any]
) -> None:
    steps = [{"name": n, "function": f"{T}.meet_and_quote"} for n in ("a", "b", "c")]
    write(env.config, "Meeting", tasks=steps, merge_strategy="DEEP")
    wf, sent = await env.start("Meeting")
    MEETING[wf.id] = (len(sent), asyncio.Event())  # every worker loads before any reports
    workers = [
        env.config.builder(await other_store(), execution_provider=FanOutProvider()) for _ in sent
    ]

    applied = await asyncio.gather(*(work(w, t) for w, t in zip(workers, sent, strict=True)))

    assert applied == [True, True, True]
    assert sorted(RUNS[wf.id]) == ["a", "b", "c"]  # each ran once: no report lost or repeated
    done = await env.load(wf.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == (await env.in_process("Meeting")).state
    assert done.state.finished is True
    assert len(await env.entries(wf.id, "STEP_EXECUTED")) == 1
    assert len(await env.entries(wf.id, "PARALLEL_TASK_REPORTED")) == 2


async def test_many_fan_out_workers_at_the_same_time(
    env: Env, other_store: Callable[[], Any]
) -> None:
    keys = {"iterate_over": "items", "merge_strategy": "DEEP"}
    write(env.config, "Many", task_function=f"{P}.times_ten", **keys)
    items = list(range(1, 9))
    wf, sent = await env.start("Many", {"items": items})
    stores = [await other_store() for _ in range(3)]
    workers = [env.config.builder(stores[i % 3]) for i in range(len(sent))]

    applied = await asyncio.gather(*(work(w, t) for w, t in zip(workers, sent, strict=True)))

    assert all(applied)
    assert sorted(parallel_steps.CALLS[wf.id]) == items
    done = await env.load(wf.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == (await env.in_process("Many", {"items": items})).state


# -- fan-out and batches --------------------------------------------------------------------


async def test_each_item_is_a_task_with_its_item_and_context(env: Env) -> None:
    keys = {"item_var_name": "line", "merge_strategy": "DEEP"}
    write(env.config, "Lines", iterate_over="state.items", task_function=f"{P}.count_line", **keys)
    lines = [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 5}, {"sku": "C", "qty": 1}]
    wf, sent = await env.start("Lines", {"items": lines})

    assert [(t.parallel_task, t.user_input) for t in sent] == [
        (f"FanOut_{i}", {"line": line}) for i, line in enumerate(lines)
    ]
    assert all(t.function_path == f"{P}.count_line" for t in sent)
    for task in sent[::-1]:
        assert await work(env.builder, task) is True

    assert sorted(parallel_steps.SEEN[wf.id], key=lambda seen: seen[0]) == [
        (f"FanOut_{i}", i, line) for i, line in enumerate(lines)
    ]  # the task's name, index and item in its context, on the worker
    done = await env.load(wf.id)
    assert done.state == (await env.in_process("Lines", {"items": lines})).state
    assert done.state.items == lines  # the tasks changed only their copies


async def test_batches_are_dispatched_one_after_another(env: Env) -> None:
    keys = {"batch_size": 2, "merge_strategy": "DEEP"}
    write(env.config, "Batches", iterate_over="items", task_function=f"{P}.times_ten", **keys)
    items = [1, 2, 3, 4, 5]
    wf, sent = await env.start("Batches", {"items": items})

    batches: list[list[str | None]] = []
    while sent:
        batches.append([t.parallel_task for t in sent])
        for task in sent:  # the last report of a batch commits it, then sends the next one
            assert await work(env.builder, task) is True
        sent = env.provider.take()
        stored = await env.store.load_workflow(wf.id)
        assert stored is not None
        if sent:
            assert stored.status == "PENDING_ASYNC"
            assert stored.progress["loops"] == {"FanOut": {"next": 2 * len(batches)}}
            assert set(stored.state["totals"]) == {str(i) for i in items[: 2 * len(batches)]}

    assert batches == [["FanOut_0", "FanOut_1"], ["FanOut_2", "FanOut_3"], ["FanOut_4"]]
    assert parallel_steps.CALLS[wf.id] == items  # each item once
    done = await env.load(wf.id)
    reference = await env.in_process("Batches", {"items": items})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == reference.state
    cursors = [
        [(e.data or {}).get("cursor") for e in await env.entries(run, "STEP_PROGRESSED")]
        for run in (wf.id, reference.id)
    ]
    assert cursors[0] == cursors[1] == [{"next": 2}, {"next": 4}]


# -- failures -------------------------------------------------------------------------------

FAILING = [*counted("a"), *tasks("explode", "bad"), *counted("c")]


async def test_a_failed_task_fails_the_step_and_a_retry_sends_the_tasks_anew(env: Env) -> None:
    write(env.config, "AllOrNothing", tasks=FAILING)
    wf, sent = await env.start("AllOrNothing")

    assert [await work(env.builder, task) for task in sent] == [True, True, True]

    failed = await env.load(wf.id)
    message = "Parallel task 'bad' of step 'FanOut' failed: ValueError: bad exploded"
    assert failed.status is WorkflowStatus.FAILED
    assert failed.error_message == f"ParallelExecutionError: {message}"
    assert failed.error_message == (await env.in_process("AllOrNothing")).error_message
    assert (failed.state.price, failed.state.finished) == (None, False)  # nothing merged
    assert failed.progress.steps["FanOut"] == "failed"
    assert (failed.progress.fan_out, failed.progress.dispatch) == ({}, {})

    retried = await env.builder.load_workflow(wf.id)  # with the provider that sends tasks
    await retried.retry()
    await retried.next_step()
    again = env.provider.take()
    assert {t.token for t in again}.isdisjoint(t.token for t in sent)
    assert [await work(env.builder, task) for task in sent] == [False, False, False]  # stale
    assert sorted(RUNS[wf.id]) == ["a", "c"]


async def test_partial_success_merges_the_others_and_records_the_failures(env: Env) -> None:
    write(env.config, "BestEffort", tasks=FAILING, allow_partial_success=True)
    wf, sent = await env.start("BestEffort")
    for task in sent:
        assert await work(env.builder, task) is True

    done = await env.load(wf.id)
    reference = await env.in_process("BestEffort")
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == reference.state
    errors = {"FanOut": {"bad": "ValueError: bad exploded"}}
    assert done.metadata["parallel_errors"] == reference.metadata["parallel_errors"] == errors
    failed = [
        [e.data for e in await env.entries(run, "PARALLEL_TASK_FAILED")]
        for run in (wf.id, reference.id)
    ]
    entry = {"task_name": "bad", "error": "bad exploded", "error_type": "ValueError"}
    assert failed[0] == failed[1] == [entry]


@pytest.mark.parametrize("partial", [False, True])
async def test_a_task_past_the_step_timeout_has_failed(env: Env, partial: bool) -> None:
    slow = [*counted("a"), *tasks("never_finishes", "slow")]
    write(env.config, "Slow", tasks=slow, timeout_seconds=0.2, allow_partial_success=partial)
    wf, sent = await env.start("Slow")
    assert [t.timeout_seconds for t in sent] == [0.2, 0.2]

    for task in sent:
        assert await work(env.builder, task) is True

    done = await env.load(wf.id)
    message = "TimeoutError: Task 'slow' did not finish within 0.2 s"
    if not partial:
        assert done.status is WorkflowStatus.FAILED
        assert done.error_message is not None and done.error_message.endswith(message)
        return
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state.price == 1
    assert done.metadata["parallel_errors"] == {"FanOut": {"slow": message}}


# -- providers that run the tasks themselves ------------------------------------------------


async def test_a_provider_that_runs_each_task_at_once_completes_the_step_in_the_call(
    env: Env,
) -> None:
    write(env.config, "Quotes", tasks=counted("a", "b", "c"), merge_strategy="DEEP")
    write(env.config, "AllOrNothing", tasks=FAILING)
    builder = env.config.builder(env.store, execution_provider=AtOnceProvider())
    wf = await builder.create_workflow("Quotes", {})

    result, _ = await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED and result == {"finished": True}
    assert wf.state == (await env.in_process("Quotes")).state
    assert len(await env.entries(wf.id, "PARALLEL_TASK_REPORTED")) == 2
    failing = await builder.create_workflow("AllOrNothing", {})
    with pytest.raises(ParallelExecutionError, match="'bad' of step 'FanOut'"):
        await failing.next_step()
    assert failing.status is WorkflowStatus.FAILED


async def test_tasks_in_the_background_report_through_their_reporter(env: Env) -> None:
    write(env.config, "Quotes", tasks=counted("a", "b", "c"), merge_strategy="DEEP")
    background = BackgroundProvider(max_workers=3)
    await background.initialize()
    try:
        builder = env.config.builder(env.store, execution_provider=background)
        wf = await builder.create_workflow("Quotes", {})
        await wf.next_step()
        assert wf.status is WorkflowStatus.PENDING_ASYNC
    finally:
        await background.close()  # waits for the tasks and their reports

    done = await env.load(wf.id)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.state == (await env.in_process("Quotes")).state
    assert sorted(RUNS[wf.id]) == ["a", "b", "c"]
