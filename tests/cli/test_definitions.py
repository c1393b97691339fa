"""``ruvon validate``, ``ruvon run`` and ``ruvon schema``, run as the installed console script in
the order-approval project. These commands use no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.support.definitions import line_of

SMALL = {
    "order_id": "A-2",
    "customer": "ACME",
    "items": [{"sku": "Y", "quantity": 1, "unit_price": 10}],
}
LARGE = {
    "order_id": "A-1",
    "customer": "ACME",
    "items": [{"sku": "X", "quantity": 10, "unit_price": 500}],
}
EMPTY = {"order_id": "A-3", "customer": "ACME", "items": []}

BROKEN_YAML = """\
workflow_type: Broken
initial_state_model: order_approval.models.OrderState
steps:
  - name: Validate_Order
    function: order_approval.steps.validate_order
    colour: red
  - name: Check_Amount
    type: DECISION
    routes:
      - condition: "state.total > 1000"
        target: Manager_Approval
      - default: Auto_Approve
  - name: Auto_Approve
    function: order_approval.steps.auto_approve
"""

UNIMPORTABLE_YAML = """\
workflow_type: Unimportable
initial_state_model: order_approval.models.OrderState
steps:
  - name: Validate_Order
    function: order_approval.steps.validate_order
  - name: Ship
    function: order_approval.steps.ship_it
"""


@pytest.fixture
def database(tmp_path: Path) -> str:
    """Overrides the suite's (one per backend): nothing here opens a database."""
    return f"sqlite:///{tmp_path / 'unused.db'}"


def write(cli: Cli, name: str, text: str) -> Path:
    path = cli.cwd / "config" / name
    path.write_text(text, encoding="utf-8")
    return path


# -- validate ------------------------------------------------------------------------------


def test_validate_a_valid_file(cli: Cli) -> None:
    result = cli("validate", "config/order_approval.yaml", db=False)

    assert result.code == 0, result.err
    assert result.out.startswith("✓ Valid: config/order_approval.yaml (OrderApproval;")
    assert not (cli.cwd / "ruvon.db").exists()


def test_validate_json(cli: Cli) -> None:
    result = cli("validate", "config/order_approval.yaml", "--json", db=False)

    assert result.code == 0, result.err
    assert result.json() == {
        "valid": True,
        "file": "config/order_approval.yaml",
        "workflow_types": ["OrderApproval"],
        # the registry beside the file lists it, and gives it its state model
        "registry": "config/workflow_registry.yaml",
        "errors": [],
        "warnings": [],
        "notes": [],
    }


def test_validate_graph_mermaid(cli: Cli) -> None:
    result = cli("validate", "config/order_approval.yaml", "--graph", db=False)

    assert result.code == 0, result.err
    drawing = result.out.split("```mermaid\n", 1)[1]
    assert drawing.startswith("graph TD\n")
    assert '    Check_Amount -->|"state.total > 1000"| Manager_Approval\n' in drawing
    assert '    Check_Amount -->|"default"| Auto_Approve\n' in drawing
    assert drawing.endswith("    Reject_Order --> END\n```\n")


def test_validate_graph_in_json_and_other_formats(cli: Cli) -> None:
    result = cli("validate", "config/order_approval.yaml", "--json", "--graph", db=False)
    output = result.json()
    assert output["graph"]["workflow_type"] == "OrderApproval"
    assert {"source": "Check_Amount", "target": "Auto_Approve", "kind": "route"}.items() <= (
        output["graph"]["edges"][2].items()
    )
    assert output["diagram"].startswith("graph TD\n")

    dot = cli("validate", "config/order_approval.yaml", "--graph-format", "dot", db=False)
    assert dot.code == 0, dot.err
    assert "digraph workflow {" in dot.out
    assert '"Check_Amount" -> "Manager_Approval" [label="state.total > 1000"];' in dot.out

    text = cli("validate", "config/order_approval.yaml", "--graph-format", "TEXT", db=False)
    assert "  Check_Amount [DECISION]\n    -> Manager_Approval  if state.total > 1000\n" in (
        text.out
    )


def test_validate_lists_every_problem_with_file_line_step_and_key(cli: Cli) -> None:
    path = write(cli, "broken.yaml", BROKEN_YAML.replace("Manager_Approval", "Nowhere"))

    result = cli("validate", "config/broken.yaml", db=False)

    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0] == "✗ config/broken.yaml: 2 problems"
    colour = line_of(path, "colour: red")
    target = line_of(path, "target: Nowhere")
    assert lines[1] == (
        f"  1. config/broken.yaml:{colour}, step 'Validate_Order', key 'colour': "
        "unknown key 'colour'"
    )
    assert lines[2].startswith(f"  2. config/broken.yaml:{target}, step 'Check_Amount', key ")
    assert lines[2].endswith("route target 'Nowhere' is not a step")

    errors = cli("validate", "config/broken.yaml", "--json", db=False).json()["errors"]
    assert [(e["file"], e["line"], e["step"], e["key"]) for e in errors] == [
        ("config/broken.yaml", colour, "Validate_Order", "colour"),
        ("config/broken.yaml", target, "Check_Amount", "routes"),
    ]


def test_validate_reports_warnings_of_a_valid_file(cli: Cli) -> None:
    # Without its `next:`, Auto_Approve falls through into Manager_Approval, the other branch.
    text = (cli.cwd / "config" / "order_approval.yaml").read_text(encoding="utf-8")
    path = write(cli, "order_approval.yaml", text.replace("    next: Complete_Order\n", ""))

    result = cli("validate", "config/order_approval.yaml", db=False)

    assert result.code == 0, result.out
    line = line_of(path, "- name: Auto_Approve")
    assert result.out.splitlines()[1].startswith(
        f"  warning: config/order_approval.yaml:{line}, step 'Auto_Approve': step "
        "'Auto_Approve' is a branch of 'Check_Amount' and has no 'next:'"
    )
    warnings = cli("validate", "config/order_approval.yaml", "--json", db=False).json()
    assert [(w["line"], w["step"]) for w in warnings["warnings"]] == [(line, "Auto_Approve")]


def test_validate_a_yaml_syntax_error(cli: Cli) -> None:
    write(cli, "tabs.yaml", "workflow_type: Tabs\nsteps:\n  - name: a\n\tfunction: b\n")

    result = cli("validate", "config/tabs.yaml", db=False)

    assert result.code == 1
    assert result.out.splitlines()[1] == (
        "  1. config/tabs.yaml:4:1: invalid YAML: tabs are not allowed for indentation; use spaces"
    )


def test_a_file_no_registry_lists_must_name_its_state_model(cli: Cli) -> None:
    text = (cli.cwd / "config" / "order_approval.yaml").read_text(encoding="utf-8")
    elsewhere = cli.cwd / "drafts"
    elsewhere.mkdir()
    (elsewhere / "copy.yaml").write_text(text, encoding="utf-8")

    result = cli("validate", "drafts/copy.yaml", db=False)

    assert result.code == 1
    assert "key 'initial_state_model': missing 'initial_state_model'" in result.out
    assert "note: no registry lists drafts/copy.yaml" in result.out


def test_strict_imports_the_functions(cli: Cli) -> None:
    path = write(cli, "unimportable.yaml", UNIMPORTABLE_YAML)

    relaxed = cli("validate", "config/unimportable.yaml", db=False)
    strict = cli("validate", "config/unimportable.yaml", "--strict", db=False)

    assert relaxed.code == 0, relaxed.out
    assert strict.code == 1
    line = line_of(path, "ship_it")
    assert strict.out.splitlines()[1] == (
        f"  1. config/unimportable.yaml:{line}, step 'Ship', key 'function': cannot import "
        "'order_approval.steps.ship_it': 'order_approval.steps' has no attribute 'ship_it'"
    )


def test_validate_a_registry_file(cli: Cli) -> None:
    result = cli("validate", "config/workflow_registry.yaml", "--strict", db=False)
    assert result.code == 0, result.out + result.err
    assert "(OrderApproval; imports checked)" in result.out

    graph = cli("validate", "config/workflow_registry.yaml", "--graph", db=False)
    assert graph.code == 2
    assert "--graph draws one workflow" in graph.err


def test_bad_arguments_exit_2(cli: Cli) -> None:
    unknown = cli("validate", "config/order_approval.yaml", "--graph-format", "svg", db=False)
    assert unknown.code == 2
    assert "--graph-format" in unknown.err

    missing = cli("validate", "config/missing.yaml", db=False)
    assert missing.code == 2
    assert missing.err.strip() == "Error: No such file: config/missing.yaml"


# -- run -----------------------------------------------------------------------------------


def test_run_to_completion(cli: Cli) -> None:
    result = cli("run", "config/order_approval.yaml", "--data", json.dumps(SMALL), db=False)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].endswith("(OrderApproval, in memory)")
    assert lines[1:8] == [
        "Step Validate_Order: COMPLETED",
        '  Result: {"total": 10.0}',
        "Step Check_Amount: JUMPED",
        "Step Auto_Approve: COMPLETED",
        '  Result: {"approved": true, "approver": "auto"}',
        "Step Complete_Order: COMPLETED",
        '  Result: {"outcome": "fulfilled (10.00 approved by auto)"}',
    ]
    assert "Status: COMPLETED" in lines
    assert '  "outcome": "fulfilled (10.00 approved by auto)"' in lines
    assert lines[-1].startswith("Successfully completed workflow ")
    assert not (cli.cwd / "ruvon.db").exists()


def test_run_stops_at_a_wait(cli: Cli) -> None:
    data = cli.cwd / "large.json"
    data.write_text(json.dumps(LARGE), encoding="utf-8")

    result = cli("run", "config/order_approval.yaml", "--data-file", str(data), db=False)

    assert result.code == 0, result.err
    assert "Status: WAITING_HUMAN" in result.out
    assert (
        "The workflow waits at step Manager_Approval for input (approved, approver, comment). "
        "ruvon run keeps nothing" in result.out
    )
    assert "Step Complete_Order" not in result.out

    output = cli("run", "config/order_approval.yaml", "-d", json.dumps(LARGE), "--json", db=False)
    assert output.code == 0, output.err
    run = output.json()
    assert (run["status"], run["current_step"], run["waiting_for_input"]) == (
        "WAITING_HUMAN",
        "Manager_Approval",
        True,
    )
    assert [step["step"] for step in run["steps"]] == ["Validate_Order", "Check_Amount"]
    assert run["state"]["total"] == 5000.0


def test_run_a_failing_step_exits_1(cli: Cli) -> None:
    result = cli("run", "config/order_approval.yaml", "--data", json.dumps(EMPTY), db=False)

    assert result.code == 1
    assert "Step Validate_Order: FAILED\n  Error: ValueError: Order A-3 has no items" in result.out
    assert (
        "Error: Step 'Validate_Order' failed: ValueError: Order A-3 has no items; the workflow "
        "is FAILED (in memory: nothing stored)"
    ) in result.err


def test_run_an_invalid_file_or_bad_data(cli: Cli) -> None:
    write(cli, "unimportable.yaml", UNIMPORTABLE_YAML)
    invalid = cli("run", "config/unimportable.yaml", db=False)
    assert invalid.code == 1
    assert "'order_approval.steps.ship_it'" in invalid.err

    bad = cli("run", "config/order_approval.yaml", "--data", "{not json", db=False)
    assert bad.code == 2
    assert "--data is not valid JSON" in bad.err


# -- schema and help -----------------------------------------------------------------------


def test_schema(cli: Cli) -> None:
    printed = cli("schema", db=False)

    assert printed.code == 0, printed.err
    schema = printed.json()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "steps" in schema["properties"]

    written = cli("schema", "--output", "workflow.schema.json", db=False)
    assert written.code == 0, written.err
    assert json.loads((cli.cwd / "workflow.schema.json").read_text(encoding="utf-8")) == schema


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("validate", "Example: ruvon validate config/order_approval.yaml --graph"),
        ("run", "Example: ruvon run config/order_approval.yaml"),
        ("schema", "Example: ruvon schema --output"),
    ],
)
def test_help_ends_with_an_example(cli: Cli, command: str, example: str) -> None:
    result = cli(command, "--help", db=False)

    assert result.code == 0
    assert example in result.out
