"""PARALLEL steps: declared tasks and fan-out, merged in declared order whatever order they
finish in (every strategy and behaviour), a custom merge function, failed and timed-out tasks
with and without partial success, tasks running at once on the thread pool and one after
another on the sync provider. Batches are in ``test_parallel_batches``."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ruvon import DefinitionError, WorkflowStatus
from ruvon.errors import MergeConflictError, ParallelExecutionError
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.support import parallel_steps
from tests.support.config import STEPS, ConfigDir, audit_log, workflow
from tests.support.parallel_steps import P, tasks, write

ABC = tasks("quote", "a", "b", "c")


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutionProvider]:
    provider = ThreadPoolExecutionProvider(max_workers=4)
    await provider.initialize()
    try:
        yield provider
    finally:
        await provider.close()


# -- merging --------------------------------------------------------------------------------

DEEP_INFO = {"base": 0, "x": 1, "y": 2, "z": 3}
"""``info`` after a DEEP merge: the state's ``base`` kept, every task's key added."""

MATRIX = [
    ("SHALLOW", "PREFER_NEW", {"price": 3, "info": {"z": 3}}),
    ("shallow", "prefer_existing", {"price": 1, "info": {"x": 1, "shared": "a"}}),
    ("Shallow", "prefer_old", {"price": 1, "info": {"x": 1, "shared": "a"}}),
    ("DEEP", "prefer_new", {"price": 3, "info": {**DEEP_INFO, "shared": "b"}}),
    ("deep", "PREFER_EXISTING", {"price": 1, "info": {**DEEP_INFO, "shared": "a"}}),
]


@pytest.mark.parametrize("finish_order", [["c", "b", "a"], ["b", "c", "a"]])
@pytest.mark.parametrize(("strategy", "behavior", "expected"), MATRIX)
async def test_results_merge_in_declared_order_whatever_order_tasks_finish_in(
    config: ConfigDir,
    persistence: PersistenceProvider,
    pool: ThreadPoolExecutionProvider,
    strategy: str,
    behavior: str,
    expected: dict[str, Any],
    finish_order: list[str],
) -> None:
    write(config, "Quotes", tasks=ABC, merge_strategy=strategy, merge_conflict_behavior=behavior)
    builder = config.builder(persistence, execution_provider=pool)
    wf = await builder.create_workflow("Quotes", {"finish_order": finish_order})

    result, _ = await wf.next_step()

    assert parallel_steps.turnstile(wf.id).passed == finish_order
    assert wf.status is WorkflowStatus.COMPLETED
    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.state.price == expected["price"]  # no task's in-place change (999) leaks
    assert stored.state.info == expected["info"]
    assert stored.state.only_a == "a"
    executed = [e for e in await audit_log(persistence, wf.id) if e.step_name == "FanOut"]
    assert executed[-1].event_type == "STEP_EXECUTED"
    assert executed[-1].data is not None
    assert executed[-1].data["result"]["price"] == expected["price"]
    assert result == {"finished": True}


@pytest.mark.parametrize("strategy", ["SHALLOW", "DEEP"])
async def test_raise_error_names_the_key_and_both_tasks_and_merges_nothing(
    config: ConfigDir,
    persistence: PersistenceProvider,
    pool: ThreadPoolExecutionProvider,
    strategy: str,
) -> None:
    write(
        config, "Strict", tasks=ABC, merge_strategy=strategy, merge_conflict_behavior="raise_error"
    )
    wf = await config.builder(persistence, execution_provider=pool).create_workflow(
        "Strict", {"finish_order": ["c", "b", "a"]}
    )

    with pytest.raises(MergeConflictError) as caught:
        await wf.next_step()

    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.key, error.tasks, error.step_name) == ("price", ("a", "b"), "FanOut")
    assert "Key 'price'" in str(error)
    assert "'a' and 'b'" in str(error)
    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.FAILED
    assert (stored.state.price, stored.state.only_a) == (None, None)
    assert stored.error_message is not None
    assert "MergeConflictError" in stored.error_message


async def test_deep_conflicts_are_found_at_the_nested_key(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(
        config,
        "Nested",
        tasks=tasks("shared_info", "left", "right"),
        merge_strategy="DEEP",
        merge_conflict_behavior="RAISE_ERROR",
    )
    wf = await config.builder(persistence).create_workflow("Nested", {})

    with pytest.raises(MergeConflictError, match=r"Key 'info\.shared'.*'left' and 'right'"):
        await wf.next_step()


async def test_equal_values_are_not_a_conflict(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(
        config,
        "Agreeing",
        tasks=tasks("same_price", "a", "b"),
        merge_strategy="DEEP",
        merge_conflict_behavior="RAISE_ERROR",
    )
    wf = await config.builder(persistence).create_workflow("Agreeing", {})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.price == 5
    assert wf.state.info == {"base": 0, "a": 1, "b": 1}


async def test_a_merge_function_replaces_the_built_in_merge(
    config: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    write(
        config,
        "Summed",
        tasks=ABC,
        merge_function_path=f"{P}.summarize",
        merge_conflict_behavior="RAISE_ERROR",  # not consulted: the function merges
    )
    wf = await config.builder(persistence, execution_provider=pool).create_workflow(
        "Summed", {"finish_order": ["b", "c", "a"]}
    )

    await wf.next_step()

    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.state.total == 6
    assert stored.state.merged_order == ["a", "b", "c"]  # declared order, not b, c, a
    assert stored.state.price is None  # only what the function returned is merged


# -- failed tasks ---------------------------------------------------------------------------

FAILING = [*tasks("quote", "a"), *tasks("explode", "bad"), *tasks("quote", "c")]


async def test_a_failed_task_fails_the_step_and_nothing_is_merged(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "AllOrNothing", tasks=FAILING)
    wf = await config.builder(persistence).create_workflow("AllOrNothing", {})

    with pytest.raises(ParallelExecutionError) as caught:
        await wf.next_step()

    assert caught.value.errors == {"bad": "ValueError: bad exploded"}
    assert str(caught.value) == (
        "Parallel task 'bad' of step 'FanOut' failed: ValueError: bad exploded"
    )
    assert isinstance(caught.value.__cause__, ValueError)
    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.FAILED
    assert (stored.state.price, stored.state.only_a) == (None, None)
    assert "parallel_errors" not in stored.metadata


async def test_partial_success_merges_the_others_and_records_the_failures(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "BestEffort", tasks=FAILING, allow_partial_success=True)
    wf = await config.builder(persistence).create_workflow("BestEffort", {})

    await wf.next_step()

    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.COMPLETED
    assert (stored.state.price, stored.state.only_a) == (3, "a")  # a and c merged, c last
    assert stored.metadata["parallel_errors"] == {"FanOut": {"bad": "ValueError: bad exploded"}}
    failed = [e for e in await audit_log(persistence, wf.id) if e.event_type.startswith("PARA")]
    assert [(e.event_type, e.step_name) for e in failed] == [("PARALLEL_TASK_FAILED", "FanOut")]
    assert failed[0].data == {
        "task_name": "bad",
        "error": "bad exploded",
        "error_type": "ValueError",
    }


async def test_every_failed_task_is_named(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "AllBad", tasks=tasks("explode", "x", "y"))
    wf = await config.builder(persistence).create_workflow("AllBad", {})

    with pytest.raises(ParallelExecutionError, match=r"2 parallel tasks of step 'FanOut'") as e:
        await wf.next_step()

    assert list(e.value.errors) == ["x", "y"]


@pytest.mark.parametrize("partial", [False, True])
async def test_a_task_that_does_not_finish_in_time_has_failed(
    config: ConfigDir, persistence: PersistenceProvider, partial: bool
) -> None:
    write(
        config,
        "Slow",
        tasks=[*tasks("quote", "a"), *tasks("never_finishes", "slow")],
        timeout_seconds=0.2,
        allow_partial_success=partial,
    )
    wf = await config.builder(persistence).create_workflow("Slow", {})

    if not partial:
        with pytest.raises(ParallelExecutionError, match=r"'slow'.*TimeoutError"):
            await wf.next_step()
        assert wf.status is WorkflowStatus.FAILED
        return
    await wf.next_step()
    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.price == 1
    assert wf.metadata["parallel_errors"]["FanOut"]["slow"].startswith("TimeoutError: ")


async def test_a_retry_policy_runs_only_the_failed_tasks_again(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(
        config,
        "Retried",
        tasks=[*tasks("same_price", "steady"), *tasks("flaky", "shaky")],
        retry_policy={"max_attempts": 2, "delay_seconds": 0},
        merge_strategy="DEEP",
    )
    wf = await config.builder(persistence).create_workflow("Retried", {})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert parallel_steps.CALLS[wf.id] == ["shaky", "shaky"]
    assert wf.state.info == {"base": 0, "steady": 1, "shaky": 2}  # shaky's second attempt


# -- fan-out --------------------------------------------------------------------------------


async def test_fan_out_runs_one_task_per_item(
    config: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    write(
        config,
        "Lines",
        iterate_over="state.items",
        task_function=f"{P}.count_line",
        item_var_name="line",
        merge_strategy="DEEP",
    )
    lines = [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 5}, {"sku": "C", "qty": 1}]
    wf = await config.builder(persistence, execution_provider=pool).create_workflow(
        "Lines", {"items": lines}
    )

    await wf.next_step()

    assert wf.state.totals == {"A": 2, "B": 5, "C": 1}
    assert wf.state.items == lines  # the tasks changed only their copies
    assert sorted(parallel_steps.SEEN[wf.id], key=lambda seen: seen[0]) == [
        ("FanOut_0", 0, lines[0]),
        ("FanOut_1", 1, lines[1]),
        ("FanOut_2", 2, lines[2]),
    ]


async def test_an_empty_list_completes_the_step_without_tasks(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Nothing", iterate_over="items", task_function=f"{P}.times_ten")
    wf = await config.builder(persistence).create_workflow("Nothing", {"items": []})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert parallel_steps.CALLS[wf.id] == []
    executed = [e for e in await audit_log(persistence, wf.id) if e.step_name == "FanOut"]
    assert [e.event_type for e in executed] == ["STEP_EXECUTED"]
    assert executed[0].data is not None
    assert executed[0].data["result"] == {}


@pytest.mark.parametrize(
    ("path", "detail"),
    [("state.not_a_list", "got dict"), ("state.not_a_list.b", "there is no 'b'")],
)
async def test_fan_out_over_something_else_fails_naming_step_and_path(
    config: ConfigDir, persistence: PersistenceProvider, path: str, detail: str
) -> None:
    write(config, "NotAList", iterate_over=path, task_function=f"{P}.times_ten")
    wf = await config.builder(persistence).create_workflow("NotAList", {})

    with pytest.raises(ValueError) as caught:
        await wf.next_step()

    assert str(caught.value) == (
        f"PARALLEL step 'FanOut': iterate_over '{path}' did not resolve to a list ({detail})"
    )
    assert (await config.builder(persistence).load_workflow(wf.id)).status is WorkflowStatus.FAILED


# -- where tasks run ------------------------------------------------------------------------


async def test_the_thread_pool_runs_the_tasks_at_the_same_time(
    config: ConfigDir, persistence: PersistenceProvider, pool: ThreadPoolExecutionProvider
) -> None:
    write(config, "Together", tasks=tasks("meet", "a", "b", "c"), merge_strategy="DEEP")
    wf = await config.builder(persistence, execution_provider=pool).create_workflow("Together", {})
    parallel_steps.BARRIERS[wf.id] = threading.Barrier(3)

    await wf.next_step()  # each task waits at the barrier until all three are there

    assert wf.status is WorkflowStatus.COMPLETED
    threads = {wf.state.info[name] for name in ("a", "b", "c")}
    assert len(threads) == 3
    assert all(name.startswith("ruvon-step") for name in threads)


async def test_the_sync_provider_runs_them_one_after_another_in_declared_order(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "InTurn", tasks=tasks("one_at_a_time", "c", "a", "b"))
    wf = await config.builder(persistence).create_workflow("InTurn", {})

    await wf.next_step()

    assert parallel_steps.ORDER[wf.id] == [
        "start c", "end c", "start a", "end a", "start b", "end b",
    ]  # fmt: skip


# -- the definition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"tasks": ABC, "merge_strategy": "append"}, "merge_strategy APPEND"),
        ({"tasks": tasks("quote", "a", "a")}, "task names must be unique; repeated: a"),
        ({"iterate_over": "items", "task_function": f"{P}.turnstile"}, "state, context"),
    ],
)
def test_definition_errors(config: ConfigDir, keys: dict[str, Any], message: str) -> None:
    write(config, "Wrong", **keys)

    with pytest.raises(DefinitionError, match=message):
        config.builder().validate("Wrong")


async def test_each_task_duration_is_a_metric(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    """Observability per task: a ``parallel_task_duration_ms`` point per task, committed with
    the step and tagged with the task's name."""
    config.write(
        "TaskMetrics",
        workflow(
            "TaskMetrics",
            f"""
            - name: FanOut
              type: PARALLEL
              tasks:
                - name: a
                  function: {STEPS}.mark
                - name: b
                  function: {STEPS}.mark
            """,
        ),
    )
    wf = await config.builder(persistence).create_workflow("TaskMetrics", {"order_id": "M1"})
    await wf.next_step()

    points = await persistence.get_workflow_metrics(
        workflow_id=wf.id, metric_name="parallel_task_duration_ms"
    )
    assert sorted((p.step_name, (p.tags or {})["task"], (p.tags or {})["ok"]) for p in points) == [
        ("FanOut", "a", True),
        ("FanOut", "b", True),
    ]
    assert all(p.metric_value >= 0 and p.unit == "ms" for p in points)
