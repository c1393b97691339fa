"""A YAML syntax error is one issue with file, line and column and a short sentence, not
PyYAML's multi-line dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruvon import DefinitionError, DefinitionIssue
from ruvon.builder import WorkflowBuilder
from tests.support.config import ConfigDir
from tests.support.definitions import line_of

HEAD = "workflow_type: S\n"

# (file text, a fragment of the line the issue is at, its column, the message)
CASES = [
    (
        HEAD + "steps:\n\t- name: A\n",
        "- name: A",
        1,
        "tabs are not allowed for indentation; use spaces",
    ),
    (
        HEAD + "steps:\n  - name: A\n  \tfunction: x\n",
        "function: x",
        3,
        "tabs are not allowed for indentation; use spaces",
    ),
    (
        HEAD + "steps:\n  - name:\tA\n",
        "name:",
        10,
        "a tab cannot separate YAML tokens here; use spaces",
    ),
    (
        HEAD + "steps:\n  - name: A\n    function: x\n   bad: indentation\n",
        "bad:",
        4,
        "expected a list item '-' aligned with the list at line 3, column 3, but found a new "
        "'key: value' (check the indentation)",
    ),
    (
        HEAD + "steps:\n  - name: A\n    function: x\n    - oops\n",
        "- oops",
        5,
        "expected a 'key:' aligned with the mapping at line 3, column 5, but found a list item "
        "'-' (check the indentation)",
    ),
    (
        HEAD + 'description: "unclosed\nsteps: []\n',
        "unclosed",
        14,
        "this quoted string is never closed (the file ends inside it)",
    ),
    (
        HEAD + "steps: [1, 2\nother: 3\n",
        "other: 3",
        6,
        "the '[' at line 2, column 8 is not closed: expected ',' or ']', but found ':'",
    ),
    (
        HEAD + "steps:\n  - name: A\n    function x\n    other: 1\n",
        "function x",
        5,
        "expected 'key: value', but this line has no ':' after its key",
    ),
    (
        HEAD + "description: a: b\nsteps: []\n",
        "description",
        15,
        "':' is not allowed here; check the indentation of this line, or quote a value that "
        "contains ': '",
    ),
    (
        HEAD + "description: @home\nsteps: []\n",
        "description",
        14,
        "a value cannot start with '@'; put the value in quotes",
    ),
]


@pytest.mark.parametrize(
    ("text", "fragment", "column", "message"),
    CASES,
    ids=[
        "tab-indent",
        "tab-in-indent",
        "tab-after-key",
        "indentation",
        "item-in-mapping",
        "unclosed-quote",
        "unclosed-list",
        "no-colon",
        "colon-in-value",
        "reserved-character",
    ],
)
def test_a_syntax_error_is_one_sentence_at_its_line_and_column(
    config: ConfigDir, text: str, fragment: str, column: int, message: str
) -> None:
    path = config.write("S", text)

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("S")

    (issue,) = caught.value.issues
    line = line_of(path, fragment)
    assert issue == DefinitionIssue(
        f"invalid YAML: {message}", file=str(path), line=line, column=column
    )
    assert str(caught.value).endswith(f"\n  - {path}:{line}:{column}: invalid YAML: {message}")


def test_a_syntax_error_in_the_registry_is_located_there(tmp_path: Path) -> None:
    path = tmp_path / "workflow_registry.yaml"
    path.write_text("workflows:\n\t- type: Loan\n", encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path)

    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.column) == (str(path), 2, 1)
    assert issue.message == "invalid YAML: tabs are not allowed for indentation; use spaces"


def test_a_character_yaml_does_not_allow(tmp_path: Path) -> None:
    path = tmp_path / "workflow_registry.yaml"
    path.write_text("workflows: []\nnote: \x07\n", encoding="utf-8")

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path)

    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == (2, 7)
    assert issue.message == "invalid YAML: the character #x0007 is not allowed in a YAML file"


def test_the_column_is_shown_only_with_a_line() -> None:
    assert str(DefinitionIssue("bad", file="a.yaml", line=3, column=7)) == "a.yaml:3:7: bad"
    assert str(DefinitionIssue("bad", file="a.yaml", column=7)) == "a.yaml: bad"
    assert str(DefinitionIssue("bad", file="a.yaml", line=3, step="S")) == (
        "a.yaml:3, step 'S': bad"
    )
