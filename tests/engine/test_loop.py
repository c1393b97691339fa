"""LOOP steps: ITERATE over a state list and WHILE a condition holds, body results merged
before the next body step, ``max_iterations``, routes inside the body, and the durability of
iterations: each one is committed (audit STEP_PROGRESSED, the cursor in the progress record),
and a failed or interrupted loop resumes at the iteration in progress without running the
finished ones again."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ruvon import StepNotImplementedError, WorkflowStatus
from ruvon.errors import NoRouteMatchedError, StepResultError
from ruvon.providers.persistence import PersistenceProvider
from tests.support import loop_steps
from tests.support.config import ConfigDir, audit_log
from tests.support.loop_steps import L, body, write

# -- ITERATE -------------------------------------------------------------------------------


async def test_iterate_runs_the_body_in_order_for_each_item(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Sum", mode="ITERATE", iterate_over="state.items", body=body("add", "double"))
    wf = await config.builder(persistence).create_workflow("Sum", {"items": [1, 2, 3]})

    result, current = await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert (result, current) == ({"finished": True}, None)
    assert loop_steps.CALLS[wf.id] == [("Add", 0, 1, 1), ("Add", 1, 2, 2), ("Add", 2, 3, 3)]
    # Double saw what Add merged just before it, in the same iteration.
    expected = [
        {"total": 1, "doubled": 2, "note": "doubled at 0"},
        {"total": 3, "doubled": 6, "note": "doubled at 1"},
        {"total": 6, "doubled": 12, "note": "doubled at 2"},
    ]
    stored = await config.builder(persistence).load_workflow(wf.id)
    assert (stored.state.total, stored.state.doubled) == (6, 12)
    assert stored.state.loop_results == expected
    assert stored.state.loop_iterations == 3
    assert stored.state.finished is True


async def test_the_item_is_passed_by_item_var_name_as_a_copy(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(
        config,
        "Lines",
        mode="ITERATE",
        iterate_over="lines",  # without the "state." prefix
        item_var_name="line",
        body=body("add_quantity"),
    )
    lines = [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 5}]
    wf = await config.builder(persistence).create_workflow("Lines", {"lines": lines})

    await wf.next_step()

    assert loop_steps.CALLS[wf.id] == [
        ("Add_quantity", 0, lines[0], lines[0]),
        ("Add_quantity", 1, lines[1], lines[1]),
    ]
    assert wf.state.total == 7
    assert wf.state.lines == lines  # the body changed its copy of each line only


async def test_an_empty_list_runs_no_iteration_and_the_workflow_goes_on(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Empty", mode="ITERATE", iterate_over="state.items", body=body("add"))
    wf = await config.builder(persistence).create_workflow("Empty", {"items": []})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert loop_steps.CALLS[wf.id] == []
    assert (wf.state.loop_results, wf.state.loop_iterations, wf.state.finished) == ([], 0, True)
    executed = [e for e in await audit_log(persistence, wf.id) if e.step_name == "Each"]
    assert [e.event_type for e in executed] == ["STEP_EXECUTED"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("state.not_a_list", "got dict"),
        ("state.loop_iterations", "got NoneType"),
        ("state.not_a_list.b", "there is no 'b'"),
    ],
)
async def test_iterate_over_a_non_list_fails_the_step_naming_step_and_path(
    config: ConfigDir, persistence: PersistenceProvider, path: str, reason: str
) -> None:
    write(config, "NotAList", mode="ITERATE", iterate_over=path, body=body("add"))
    wf = await config.builder(persistence).create_workflow("NotAList", {})

    with pytest.raises(ValueError, match=rf"LOOP step 'Each': iterate_over '{path}'") as caught:
        await wf.next_step()

    assert reason in str(caught.value)
    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.FAILED
    assert stored.current_step == "Each"
    assert stored.error_message is not None and path in stored.error_message


async def test_a_dict_state_is_merged_as_a_dict(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(
        config,
        "Plain",
        mode="ITERATE",
        iterate_over="items",
        body=body("add_to_dict"),
        state_model="builtins.dict",
    )
    wf = await config.builder(persistence).create_workflow("Plain", {"items": [4, 5]})

    await wf.next_step()

    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.COMPLETED
    assert stored.state["total"] == 9
    assert stored.state["seen"] == [4, 5]
    assert stored.state["loop_iterations"] == 2
    assert stored.state["loop_results"] == [
        {"total": 4, "seen": [4]},
        {"total": 9, "seen": [4, 5]},
    ]


async def test_keys_the_model_lacks_are_kept_in_loop_results_only(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Extra", mode="ITERATE", iterate_over="state.items", body=body("extra_key"))
    wf = await config.builder(persistence).create_workflow("Extra", {"items": [1, 2]})

    await wf.next_step()

    assert wf.state.loop_results == [
        {"total": 1, "not_a_field": 1},
        {"total": 3, "not_a_field": 2},
    ]
    assert not hasattr(wf.state, "not_a_field")


# -- WHILE and max_iterations --------------------------------------------------------------


@pytest.mark.parametrize(("limit", "runs"), [(3, 3), (0, 0)])
async def test_while_runs_the_body_while_the_condition_holds(
    config: ConfigDir, persistence: PersistenceProvider, limit: int, runs: int
) -> None:
    write(
        config, "Count", mode="WHILE", while_condition="state.counter < limit", body=body("count")
    )
    wf = await config.builder(persistence).create_workflow("Count", {"limit": limit})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert (wf.state.counter, wf.state.loop_iterations) == (runs, runs)
    assert [(name, index, item) for name, index, item, _ in loop_steps.CALLS[wf.id]] == [
        ("Count", i, None) for i in range(runs)
    ]


@pytest.mark.parametrize(
    ("keys", "left"),
    [
        ({"mode": "WHILE", "while_condition": "state.counter < 100"}, "still true"),
        ({"mode": "ITERATE", "iterate_over": "state.items"}, "3 item(s) of 'state.items' left"),
    ],
    ids=["WHILE", "ITERATE"],
)
async def test_max_iterations_ends_the_loop_with_a_warning_and_the_workflow_goes_on(
    config: ConfigDir,
    persistence: PersistenceProvider,
    caplog: pytest.LogCaptureFixture,
    keys: dict[str, Any],
    left: str,
) -> None:
    write(config, "Bounded", max_iterations=2, body=body("count"), **keys)
    wf = await config.builder(persistence).create_workflow("Bounded", {"items": [1, 2, 3, 4, 5]})

    with caplog.at_level(logging.WARNING, logger="ruvon.steps"):
        await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.finished is True
    assert (wf.state.counter, wf.state.loop_iterations) == (2, 2)
    (warning,) = [r for r in caplog.records if "max_iterations" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "LOOP step 'Each'" in message and "max_iterations (2)" in message
    assert left in message and wf.id in message


async def test_no_warning_when_the_loop_ends_at_max_iterations_by_itself(
    config: ConfigDir, persistence: PersistenceProvider, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        config,
        "Exact",
        mode="ITERATE",
        iterate_over="state.items",
        max_iterations=2,
        body=body("add"),
    )
    wf = await config.builder(persistence).create_workflow("Exact", {"items": [1, 2]})

    with caplog.at_level(logging.WARNING, logger="ruvon.steps"):
        await wf.next_step()

    assert wf.state.loop_iterations == 2
    assert not [r for r in caplog.records if "max_iterations" in r.getMessage()]


# -- the body ------------------------------------------------------------------------------

ROUTED_BODIES: dict[str, list[dict[str, Any]]] = {
    "STANDARD": [
        {
            "name": "Size",
            "function": f"{L}.size",
            "routes": [{"condition": "item > 2 or loop_index == 3", "target": "Big"}],
        },
        {"name": "Small", "function": f"{L}.small", "next": "END"},
        {"name": "Big", "function": f"{L}.big"},
    ],
    "DECISION": [
        {
            "name": "Size",
            "type": "DECISION",
            "routes": [
                {"condition": "loop_item > 2 or loop_index == 3", "target": "Big"},
                {"default": "Small"},
            ],
        },
        {"name": "Small", "function": f"{L}.small", "next": "END"},
        {"name": "Big", "function": f"{L}.big"},
    ],
}


@pytest.mark.parametrize("kind", list(ROUTED_BODIES))
async def test_routes_and_next_move_forward_inside_the_body(
    config: ConfigDir, persistence: PersistenceProvider, kind: str
) -> None:
    write(config, "Sizes", mode="ITERATE", iterate_over="state.items", body=ROUTED_BODIES[kind])
    wf = await config.builder(persistence).create_workflow("Sizes", {"items": [1, 3, 2, 0]})

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.sizes == ["small 1", "big 3", "small 2", "big 0"]


async def test_a_decision_body_step_without_a_matching_route_fails(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    steps: list[dict[str, Any]] = [
        {
            "name": "Size",
            "type": "DECISION",
            "routes": [{"condition": "item > 2", "target": "Big"}],
        },
        {"name": "Big", "function": f"{L}.big"},
    ]
    write(config, "NoRoute", mode="ITERATE", iterate_over="state.items", body=steps)
    wf = await config.builder(persistence).create_workflow("NoRoute", {"items": [3, 1]})

    with pytest.raises(NoRouteMatchedError, match="'Each/Size'"):
        await wf.next_step()

    assert wf.status is WorkflowStatus.FAILED
    assert wf.state.sizes == ["big 3"]  # the first iteration is committed


async def test_a_route_back_inside_the_body_fails_the_step(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    steps: list[dict[str, Any]] = [
        {"name": "Small", "function": f"{L}.small"},
        {"name": "Size", "function": f"{L}.size", "routes": [{"default": "Small"}]},
    ]
    write(config, "Back", mode="ITERATE", iterate_over="state.items", body=steps)
    wf = await config.builder(persistence).create_workflow("Back", {"items": [1]})

    with pytest.raises(ValueError, match="body step 'Size' leads back to 'Small'"):
        await wf.next_step()

    assert wf.status is WorkflowStatus.FAILED


async def test_a_body_step_that_waits_is_not_supported(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    steps = [{"name": "Add", "function": f"{L}.add"}, {"name": "Wait", "type": "HUMAN_IN_LOOP"}]
    write(config, "Waits", mode="ITERATE", iterate_over="state.items", body=steps)
    wf = await config.builder(persistence).create_workflow("Waits", {"items": [1]})

    with pytest.raises(StepNotImplementedError, match="'Each/Wait' has type HUMAN_IN_LOOP"):
        await wf.next_step()

    assert wf.status is WorkflowStatus.FAILED
    assert loop_steps.CALLS[wf.id] == []  # nothing ran


@pytest.mark.parametrize(
    ("function", "error", "message"),
    [
        ("not_a_dict", StepResultError, "Step 'Each/Not_a_dict' returned str"),
        ("unstorable", StepResultError, "Step 'Each/Unstorable' returned a value that cannot"),
        ("jumps", ValueError, "body step 'Jumps' raised WorkflowJumpDirective"),
    ],
)
async def test_what_a_body_step_cannot_do_fails_the_step_naming_it(
    config: ConfigDir,
    persistence: PersistenceProvider,
    function: str,
    error: type[Exception],
    message: str,
) -> None:
    write(config, "Bad", mode="ITERATE", iterate_over="state.items", body=body("add", function))
    wf = await config.builder(persistence).create_workflow("Bad", {"items": [1]})

    with pytest.raises(error, match=message):
        await wf.next_step()

    stored = await config.builder(persistence).load_workflow(wf.id)
    assert stored.status is WorkflowStatus.FAILED
    assert stored.current_step == "Each"
    assert stored.state.total == 0  # nothing of the failed iteration is committed


async def test_a_body_step_retries_by_its_own_retry_policy(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    steps = body("add_or_fail", retry_policy={"max_attempts": 2, "delay_seconds": 0})
    write(config, "Retried", mode="ITERATE", iterate_over="state.items", body=steps)
    wf = await config.builder(persistence).create_workflow("Retried", {"items": [1, 2, 3]})
    loop_steps.FAIL_AT[wf.id] = 1

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert wf.state.total == 6
    assert [item for _, _, _, item in loop_steps.CALLS[wf.id]] == [1, 2, 2, 3]


# -- durability ----------------------------------------------------------------------------


async def test_each_iteration_is_committed_before_the_next_one_starts(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Peek", mode="ITERATE", iterate_over="state.items", body=body("peek", "add"))
    wf = await config.builder(persistence).create_workflow("Peek", {"items": [1, 2, 3]})

    await wf.next_step()

    # What each iteration found in the store before it ran.
    first, second = [{"total": 1}], [{"total": 1}, {"total": 3}]
    assert loop_steps.PEEKS[wf.id] == [
        (0, None, 0),
        (1, {"next": 1, "loop_results": first}, 1),
        (2, {"next": 2, "loop_results": second}, 3),
    ]
    entries = [e for e in await audit_log(persistence, wf.id) if e.step_name == "Each"]
    assert [(e.event_type, (e.data or {}).get("cursor")) for e in entries] == [
        ("STEP_PROGRESSED", {"next": 1, "loop_results": first}),
        ("STEP_PROGRESSED", {"next": 2, "loop_results": second}),
        ("STEP_EXECUTED", None),
    ]
    assert [(e.data or {})["result"] for e in entries] == [
        {"total": 1},
        {"total": 3},
        {"total": 6, "loop_results": [*second, {"total": 6}], "loop_iterations": 3},
    ]
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.progress["steps"]["Each"] == "completed"
    assert "Each" not in stored.progress.get("loops", {})


async def test_a_failed_iteration_keeps_the_finished_ones_and_retry_resumes_it(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    write(config, "Resume", mode="ITERATE", iterate_over="state.items", body=body("add_or_fail"))
    wf = await config.builder(persistence).create_workflow("Resume", {"items": [1, 2, 3, 4]})
    loop_steps.FAIL_AT[wf.id] = 2

    with pytest.raises(ConnectionError, match="item 3"):
        await wf.next_step()

    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.status == "FAILED"
    assert stored.state["total"] == 3  # iterations 0 and 1 are committed
    assert stored.progress["steps"]["Each"] == "failed"
    assert stored.progress["loops"]["Each"] == {
        "next": 2,
        "loop_results": [{"total": 1}, {"total": 3}],
    }

    # Another process retries it: the loop resumes at iteration 2.
    again = await config.builder(persistence).load_workflow(wf.id)
    await again.retry()
    await again.next_step()

    assert again.status is WorkflowStatus.COMPLETED
    assert again.state.total == 10
    assert again.state.loop_iterations == 4
    assert again.state.loop_results == [{"total": t} for t in (1, 3, 6, 10)]
    calls = [item for _, _, _, item in loop_steps.CALLS[wf.id]]
    assert {item: calls.count(item) for item in (1, 2, 3, 4)} == {1: 1, 2: 1, 3: 2, 4: 1}
    progressed = [
        (e.data or {}).get("cursor", {}).get("next")
        for e in await audit_log(persistence, wf.id)
        if e.event_type == "STEP_PROGRESSED"
    ]
    assert progressed == [1, 2, 3]
