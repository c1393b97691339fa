"""A branch without ``next:`` that runs into another branch of the same routing step is a load
time warning: logged once with file and line, returned by ``validate()``, never an error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ruvon import DefinitionIssue, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.errors import DefinitionWarning
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from tests.support.config import STEPS as S
from tests.support.config import ConfigDir, workflow
from tests.support.definitions import line_of

DECIDE = """\
- name: decide
  type: DECISION
  routes:
    - condition: "state.amount > 100"
      target: reject
    - default: approve
  automate_next: true
"""


def branches(approve_next: str = "", *, between: str = "") -> str:
    """``decide`` routes to ``approve`` or ``reject``, which follow it in that order."""
    approve = f"- name: approve\n  function: {S}.mark\n  automate_next: true\n"
    if approve_next:
        approve += f"  {approve_next}\n"
    reject = f"- name: reject\n  function: {S}.mark\n"
    return workflow("Loan", DECIDE + approve + between + reject)


FALLS_THROUGH = (
    "step 'approve' is a branch of 'decide' and has no 'next:'; it falls through into "
    "'reject', another branch of 'decide'. Add 'next: <step>' (or 'next: END') to end the branch"
)


def test_validate_returns_the_warning_with_file_line_and_step(config: ConfigDir) -> None:
    path = config.write("Loan", branches())

    warnings = config.builder().validate("Loan")

    assert warnings == [
        DefinitionIssue(
            FALLS_THROUGH, file=str(path), line=line_of(path, "- name: approve"), step="approve"
        )
    ]


def test_the_warning_is_logged_once_and_loading_goes_on(
    config: ConfigDir, caplog: pytest.LogCaptureFixture
) -> None:
    path = config.write("Loan", branches())
    builder = config.builder()

    with caplog.at_level(logging.WARNING, logger="ruvon.definition"):
        builder.get_workflow_config("Loan")
        builder.get_workflow_config("Loan")
        builder.validate("Loan")

    records = [r for r in caplog.records if r.name == "ruvon.definition"]
    assert [r.getMessage() for r in records] == [
        f"{path}:{line_of(path, '- name: approve')}, step 'approve': {FALLS_THROUGH}"
    ]
    assert records[0].levelno == logging.WARNING


async def test_the_workflow_still_runs_and_falls_through(config: ConfigDir) -> None:
    config.write("Loan", branches())
    builder = config.builder(MemoryPersistenceProvider())

    created = await builder.create_workflow("Loan", {"order_id": "L1", "amount": 5})

    assert await created.run() is WorkflowStatus.COMPLETED
    assert created.state.visited == ["approve", "reject"]


@pytest.mark.parametrize(
    ("approve_next", "between"),
    [
        ("next: END", ""),
        ("next: reject", ""),  # an explicit jump into the other branch is meant
        ("", f"- name: audit\n  function: {S}.mark\n"),  # falls into a step that is no branch
    ],
    ids=["next-END", "next-explicit", "not-a-branch"],
)
def test_no_warning_when_the_branch_ends_or_the_next_step_is_no_branch(
    config: ConfigDir, approve_next: str, between: str
) -> None:
    config.write("Loan", branches(approve_next, between=between))

    assert config.builder().validate("Loan") == []


def test_no_warning_for_steps_before_the_routing_step(config: ConfigDir) -> None:
    # Backward targets are loops, not branches.
    config.write(
        "Loop",
        workflow(
            "Loop",
            f"""
            - name: first
              function: {S}.mark
            - name: second
              function: {S}.mark
            - name: check
              function: {S}.mark
              routes:
                - condition: "state.counter < 1"
                  target: first
                - condition: "state.counter < 2"
                  target: second
            """,
        ),
    )

    assert config.builder().validate("Loop") == []


def test_a_human_step_with_routes_and_a_loop_body_are_checked(config: ConfigDir) -> None:
    path = config.write(
        "Review",
        workflow(
            "Review",
            f"""
            - name: ask
              type: HUMAN_IN_LOOP
              routes:
                - condition: "state.approved"
                  target: accept
                - condition: "not state.approved"
                  target: decline
            - name: accept
              function: {S}.mark
            - name: decline
              function: {S}.mark
            - name: each
              type: LOOP
              mode: ITERATE
              iterate_over: state.visited
              loop_body:
                - name: pick
                  function: {S}.mark
                  routes:
                    - condition: "item == 'x'"
                      target: left
                    - condition: "item == 'y'"
                      target: right
                - name: left
                  function: {S}.mark
                - name: right
                  function: {S}.mark
            """,
        ),
    )

    warnings = config.builder().validate("Review")

    assert [(w.step, w.line) for w in warnings] == [
        ("accept", line_of(path, "- name: accept")),
        ("left", line_of(path, "- name: left")),
    ]
    assert "falls through into 'decline', another branch of 'ask'" in warnings[0].message
    assert "falls through into 'right', another branch of 'pick'" in warnings[1].message


def test_validate_without_a_type_returns_the_warnings_of_every_type(config: ConfigDir) -> None:
    config.write("Loan", branches())
    config.write("Fine", workflow("Fine", f"- name: A\n  function: {S}.mark\n"))

    warnings = WorkflowBuilder(config.registry_path).validate()

    assert [(Path(str(w.file)).name, w.step) for w in warnings] == [("loan.yaml", "approve")]


def test_a_definition_warning_carries_its_issue() -> None:
    issue = DefinitionIssue("falls through", file="loan.yaml", line=3, step="approve")

    warning = DefinitionWarning(issue)

    assert isinstance(warning, UserWarning)
    assert warning.issue is issue
    assert str(warning) == "loan.yaml:3, step 'approve': falls through"
