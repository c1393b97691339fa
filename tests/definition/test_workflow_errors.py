"""A broken workflow file is rejected at load time with ONE DefinitionError that lists every
problem with its file, line, step and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruvon import DefinitionError
from ruvon.builder import WorkflowBuilder
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from tests.support.config import STEPS as S
from tests.support.config import ConfigDir, workflow
from tests.support.definitions import find_issue, line_of

BROKEN = workflow(
    "Broken",
    f"""
    - name: Start
      function: {S}.mark
      colour: blue
    - name: NoFunction
      description: forgot the function
    - name: Twice
      function: {S}.mark
    - name: Twice
      function: {S}.mark
    - name: Route
      type: DECISION
      routes:
        - condition: "amount > 1"
          target: Nowhere
        - condition: "amount >"
          target: Start
        - condition: "state.__class__"
          target: Start
        - default: Start
    - name: Next
      function: {S}.mark
      next: Missing
    - name: Deps
      function: {S}.mark
      dependencies: [Ghost]
    - name: A
      function: {S}.mark
      dependencies: [B]
    - name: B
      function: {S}.mark
      dependencies: [A]
    - name: NoModule
      function: no_such_package.steps.mark
    - name: NoAttr
      function: {S}.nothing_here
    - name: WrongSignature
      function: {S}.only_state
    - name: NotCallable
      function: {S}.NOT_CALLABLE
    - name: Weird
      type: TELEPORT
    """,
)

# (message fragment, step, key, a fragment of the line the issue points at)
EXPECTED = [
    ("unknown key 'colour'", "Start", "colour", "colour: blue"),
    ("missing required key 'function'", "NoFunction", "function", "- name: NoFunction"),
    ("duplicate step name (first defined as step 3)", "Twice", "name", ("- name: Twice", 2)),
    ("route target 'Nowhere' is not a step", "Route", "routes", "target: Nowhere"),
    ("Invalid expression 'amount >'", "Route", "routes", 'condition: "amount >"'),
    ("'state.__class__' is not allowed", "Route", "routes", "state.__class__"),
    ("'next' names unknown step 'Missing'", "Next", "next", "next: Missing"),
    ("dependency 'Ghost' is not a step", "Deps", "dependencies", "Ghost"),
    ("Circular dependency detected: A -> B -> A", "A", "dependencies", "dependencies: [B]"),
    ("no module named 'no_such_package'", "NoModule", "function", "no_such_package"),
    ("has no attribute 'nothing_here'", "NoAttr", "function", "nothing_here"),
    ("must accept (state, context, **user_input)", "WrongSignature", "function", "only_state"),
    ("is not callable", "NotCallable", "function", "NOT_CALLABLE"),
    ("Unknown step type: 'TELEPORT'", "Weird", "type", "type: TELEPORT"),
]


@pytest.fixture
def broken(config: ConfigDir) -> tuple[Path, DefinitionError]:
    path = config.write("Broken", BROKEN)
    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Broken")
    return path, caught.value


def test_every_problem_is_reported_at_once(broken: tuple[Path, DefinitionError]) -> None:
    _, error = broken
    assert isinstance(error, ValueError)
    assert len(error.issues) == len(EXPECTED)


@pytest.mark.parametrize(
    ("message", "step", "key", "where"), EXPECTED, ids=[e[0][:40] for e in EXPECTED]
)
def test_each_issue_names_file_line_step_and_key(
    broken: tuple[Path, DefinitionError],
    message: str,
    step: str,
    key: str,
    where: str | tuple[str, int],
) -> None:
    path, error = broken
    fragment, occurrence = where if isinstance(where, tuple) else (where, 1)

    issue = find_issue(error, message)

    assert issue.file == str(path)
    assert issue.line == line_of(path, fragment, occurrence)
    assert issue.step == step
    assert issue.key == key
    assert f"{path}:{issue.line}, step '{step}', key '{key}': " in str(issue)


def test_the_message_lists_every_issue_with_file_and_line(
    broken: tuple[Path, DefinitionError],
) -> None:
    path, error = broken
    text = str(error)
    assert text.startswith(f"Invalid workflow definition {path}: {len(EXPECTED)} problems\n")
    listed = text.splitlines()[1:]
    assert len(listed) == len(EXPECTED)
    for line, issue in zip(listed, error.issues, strict=True):
        assert line == f"  - {issue}"
        assert f"{path}:{issue.line}," in line


async def test_create_workflow_refuses_the_file_and_stores_nothing(config: ConfigDir) -> None:
    config.write("Broken", BROKEN)
    store = MemoryPersistenceProvider()

    with pytest.raises(DefinitionError) as caught:
        await config.builder(store).create_workflow("Broken", {"order_id": "B1"})

    assert len(caught.value.issues) == len(EXPECTED)
    assert await store.list_workflows() == []


def test_a_duplicate_of_an_invalid_step_is_reported_too(config: ConfigDir) -> None:
    path = config.write(
        "Dup",
        workflow(
            "Dup",
            f"""
            - name: Start
              function: {S}.mark
              colour: blue
            - name: Start
              function: {S}.mark
            """,
        ),
    )

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Dup")

    assert [i.message for i in caught.value.issues] == [
        "unknown key 'colour'",
        "duplicate step name (first defined as step 1)",
    ]
    duplicate = caught.value.issues[1]
    assert (duplicate.line, duplicate.step, duplicate.key) == (
        line_of(path, "- name: Start", 2),
        "Start",
        "name",
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (f"{S}.NotAModel", "is not a pydantic model class"),
        ("tests.support.no_such_module.State", "cannot import"),
    ],
)
def test_an_invalid_state_model(config: ConfigDir, model: str, message: str) -> None:
    text = workflow("Model", f"- name: Start\n  function: {S}.mark\n")
    path = config.write("Model", text.replace(f"{S}.OrderState", model))

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Model")

    (issue,) = caught.value.issues
    assert message in issue.message
    assert (issue.file, issue.line, issue.key) == (
        str(path),
        line_of(path, "initial_state_model:"),
        "initial_state_model",
    )


def test_an_invalid_input_model(config: ConfigDir) -> None:
    path = config.write(
        "Input",
        workflow(
            "Input",
            f"""
            - name: Ask
              type: HUMAN_IN_LOOP
              input_model: {S}.NotAModel
            """,
        ),
    )

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Input")

    (issue,) = caught.value.issues
    assert "is not a pydantic model class" in issue.message
    assert (issue.line, issue.step, issue.key) == (
        line_of(path, "input_model:"),
        "Ask",
        "input_model",
    )


@pytest.mark.parametrize(
    "steps",
    [
        f"""
        - name: FanOut
          type: PARALLEL
          tasks:
            - name: one
              function_path: {S}.mark
            - name: two
              function: {S}.mark
          merge_strategy: deep
        """,
        """
        - name: Call
          type: HTTP
          http_config:
            method: post
            url: "https://example.invalid/{{state.order_id}}"
        """,
        f"""
        - name: Each
          type: LOOP
          mode: ITERATE
          iterate_over: state.visited
          loop_body:
            - name: Body
              function: {S}.mark
        """,
    ],
    ids=["PARALLEL", "HTTP", "LOOP"],
)
def test_kinds_without_a_runtime_still_validate(config: ConfigDir, steps: str) -> None:
    config.write("Later", workflow("Later", steps))
    builder = config.builder()

    builder.validate("Later")

    assert builder.get_workflow_config("Later")["steps"][0]["name"] in {"FanOut", "Call", "Each"}


def test_validate_without_a_type_checks_every_registered_type(config: ConfigDir) -> None:
    config.write("Good", workflow("Good", f"- name: A\n  function: {S}.mark\n"))
    config.write("Bad", workflow("Bad", "- name: A\n  function: no_such_package.f\n"))
    config.write("Worse", workflow("Worse", "- name: A\n  type: TELEPORT\n"))

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(config.registry_path).validate()

    assert sorted(Path(str(i.file)).name for i in caught.value.issues) == ["bad.yaml", "worse.yaml"]
