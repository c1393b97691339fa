"""A condition that reads a field the state model does not have is a definition error (it would
read ``None``, and so be false, at every run), reported with file, line, step and the field."""

from __future__ import annotations

import pytest

from ruvon import DefinitionError
from tests.definition.loan_models import MODELS
from tests.support.config import STATE_MODEL, ConfigDir, workflow
from tests.support.config import STEPS as S
from tests.support.definitions import line_of

LOAN = f"{MODELS}.LoanState"


def loan_workflow(steps: str, state_model: str = LOAN) -> str:
    """A ``Loan`` workflow file whose state is ``state_model``."""
    return workflow("Loan", steps).replace(STATE_MODEL, state_model)


def decision(condition: str, state_model: str = LOAN) -> str:
    """A DECISION step routing on ``condition``, then its two branches."""
    return loan_workflow(
        f"""
        - name: Decide
          type: DECISION
          routes:
            - condition: "{condition}"
              target: Approve
            - default: Reject
        - name: Approve
          function: {S}.mark
          next: END
        - name: Reject
          function: {S}.mark
        """,
        state_model,
    )


def problems(config: ConfigDir, text: str) -> list[str]:
    config.write("Loan", text)
    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Loan")
    return [issue.message for issue in caught.value.issues]


def test_a_misspelled_field_names_file_line_step_and_the_field(config: ConfigDir) -> None:
    path = config.write("Loan", decision("state.ammount > 100"))

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Loan")

    (issue,) = caught.value.issues
    assert issue.message == (
        "route condition refers to state.ammount, which LoanState does not have "
        "(did you mean 'amount'?)"
    )
    assert (issue.file, issue.line, issue.step, issue.key) == (
        str(path),
        line_of(path, "state.ammount"),
        "Decide",
        "routes",
    )
    assert f"{path}:{issue.line}, step 'Decide', key 'routes': route condition" in str(caught.value)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "state.applicant.incme > 5000",
            "refers to state.applicant.incme, which Applicant does not have "
            "(did you mean 'income'?)",
        ),
        ("ammount > 100", "refers to ammount, which LoanState does not have"),
        ("state['ammount'] > 100", "refers to state.ammount, which LoanState does not have"),
        ("len(state.tagz) > 0", "refers to state.tagz, which LoanState does not have"),
        ("state.zzz_unrelated", "refers to state.zzz_unrelated, which LoanState does not have"),
        (
            "state.interest_rate > 0.1",
            "refers to state.interest_rate, the alias of LoanState.rate; conditions read fields "
            "by name: use 'rate'",
        ),
    ],
    ids=["nested", "bare-name", "subscript", "call-argument", "no-suggestion", "alias"],
)
def test_every_way_of_reading_a_field_is_checked(
    config: ConfigDir, condition: str, message: str
) -> None:
    (found,) = problems(config, decision(condition))

    assert message in found
    if "zzz" in condition:
        assert "did you mean" not in found


@pytest.mark.parametrize(
    "condition",
    [
        "state.amount > 100 and state.applicant.income > 5000",
        "amount > 100 and len(tags) > 0",
        "state.note == 'state.ammount'",  # a string literal is not a field
        "state.doubled > 10",  # a property
        "state.metadata.anything == 1",  # inside a dict field every key is allowed
        "state.tags[0] == 'vip'",
        "state['amount'] > 1",
        "state.applicant is None",
    ],
)
def test_fields_the_model_has_load(config: ConfigDir, condition: str) -> None:
    config.write("Loan", decision(condition))

    config.builder().validate("Loan")


@pytest.mark.parametrize(
    "state_model",
    ["builtins.dict", f"{MODELS}.OpenState"],
    ids=["dict", "extra-allow"],
)
def test_a_state_that_accepts_any_key_accepts_any_name(config: ConfigDir, state_model: str) -> None:
    config.write("Loan", decision("state.anything > 100 and whatever", state_model))

    config.builder().validate("Loan")


def test_a_nested_model_of_an_open_state_is_still_checked(config: ConfigDir) -> None:
    found = problems(config, decision("state.applicant.incme > 1", f"{MODELS}.OpenState"))

    assert found == [
        "route condition refers to state.applicant.incme, which Applicant does not have "
        "(did you mean 'income'?)"
    ]


@pytest.mark.parametrize("kind", ["STANDARD", "HUMAN_IN_LOOP"])
def test_routes_of_every_kind_are_checked(config: ConfigDir, kind: str) -> None:
    function = f"function: {S}.mark" if kind == "STANDARD" else ""
    path = config.write(
        "Loan",
        loan_workflow(
            f"""
            - name: Check
              type: {kind}
              {function}
              routes:
                - condition: "state.amout > 1"
                  target: Done
            - name: Done
              function: {S}.mark
            """
        ),
    )

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Loan")

    (issue,) = caught.value.issues
    assert "refers to state.amout, which LoanState does not have (did you mean 'amount'?)" in (
        issue.message
    )
    assert (issue.line, issue.step) == (line_of(path, "state.amout"), "Check")


def test_loop_expressions_are_checked_but_not_the_loops_own_names(config: ConfigDir) -> None:
    path = config.write(
        "Loan",
        loan_workflow(
            f"""
            - name: Each
              type: LOOP
              mode: ITERATE
              iterate_over: state.tagz
              item_var_name: tag
              loop_body:
                - name: Body
                  function: {S}.mark
                  routes:
                    - condition: "tag == 'vip' and state.notte"
                      target: Body
            """
        ),
    )

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Loan")

    lines = {(i.line, i.step, i.key): i.message for i in caught.value.issues}
    assert lines == {
        (line_of(path, "iterate_over"), "Each", "iterate_over"): (
            "iterate_over refers to state.tagz, which LoanState does not have "
            "(did you mean 'tags'?)"
        ),
        (line_of(path, "state.notte"), "Body", "routes"): (
            "route condition refers to state.notte, which LoanState does not have "
            "(did you mean 'note'?)"
        ),
    }


def test_each_misspelling_is_reported_with_the_other_problems(config: ConfigDir) -> None:
    found = problems(
        config,
        loan_workflow(
            f"""
            - name: Decide
              type: DECISION
              routes:
                - condition: "state.ammount > 1 and state.ammount < 9 or state.aplicant"
                  target: Nowhere
            - name: Approve
              function: {S}.mark
            """
        ),
    )

    assert sorted(found) == [
        "route condition refers to state.ammount, which LoanState does not have "
        "(did you mean 'amount'?)",
        "route condition refers to state.aplicant, which LoanState does not have "
        "(did you mean 'applicant'?)",
        "route target 'Nowhere' is not a step",
    ]


def test_an_invalid_condition_is_reported_once(config: ConfigDir) -> None:
    found = problems(config, decision("state.ammount.upper() == 'X'"))

    assert len(found) == 1
    assert "method calls are not allowed" in found[0]
