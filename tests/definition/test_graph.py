"""``ruvon.definition.graph``: a parsed definition as nodes and edges (next, route, dependency,
END), its JSON form and its drawings, built without importing any step function."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ruvon import DefinitionError
from ruvon.definition.graph import (
    END,
    GraphEdge,
    GraphNode,
    GraphTask,
    WorkflowGraph,
    definition_graph,
)
from ruvon.definition.source import DefinitionSource
from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
from ruvon.models import StepKind
from tests.support.config import ConfigDir

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def graph_of(registry: Path, workflow_type: str) -> WorkflowGraph:
    """The graph of a registered type, parsed without importing anything."""
    source = DefinitionSource(registry, None, SimpleExpressionEvaluator())
    return definition_graph(source.parse(workflow_type).definition)


def edges(graph: WorkflowGraph) -> list[tuple[str, str, str, str | None]]:
    return [(e.source, e.target, e.kind, e.label) for e in graph.edges]


def write(config: ConfigDir, workflow_type: str, steps: str) -> WorkflowGraph:
    """A workflow file whose functions live in a module that does not exist."""
    text = f"workflow_type: {workflow_type}\ninitial_state_model: nowhere.State\nsteps:\n"
    config.write(workflow_type, text + textwrap.indent(textwrap.dedent(steps).strip(), "  "))
    return graph_of(config.registry_path, workflow_type)


# -- the examples --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def approval() -> WorkflowGraph:
    return graph_of(EXAMPLES / "order_approval/config/workflow_registry.yaml", "OrderApproval")


@pytest.fixture(scope="module")
def fulfillment() -> WorkflowGraph:
    registry = EXAMPLES / "order_fulfillment/config/workflow_registry.yaml"
    return graph_of(registry, "OrderFulfillment")


def test_order_approval_routes_with_conditions_default_and_falling_through(
    approval: WorkflowGraph,
) -> None:
    assert approval.workflow_type == "OrderApproval"
    assert not approval.dag
    assert [(node.name, node.kind) for node in approval.nodes] == [
        ("Validate_Order", StepKind.STANDARD),
        ("Check_Amount", StepKind.DECISION),
        ("Auto_Approve", StepKind.STANDARD),
        ("Manager_Approval", StepKind.HUMAN_IN_LOOP),
        ("Complete_Order", StepKind.STANDARD),
        ("Reject_Order", StepKind.STANDARD),
    ]
    assert edges(approval) == [
        ("Validate_Order", "Check_Amount", "next", None),
        # the condition after {{parameters.approval_limit}} was substituted
        ("Check_Amount", "Manager_Approval", "route", "state.total > 1000"),
        ("Check_Amount", "Auto_Approve", "route", "default"),
        ("Auto_Approve", "Complete_Order", "next", None),  # its `next:`
        ("Manager_Approval", "Reject_Order", "route", "not state.approved"),
        ("Manager_Approval", "Complete_Order", "next", None),  # no route matched
        ("Complete_Order", END, "next", None),  # `next: END`
        ("Reject_Order", END, "next", None),  # the last step
    ]
    check = approval.node("Check_Amount")
    assert check is not None and not check.may_jump
    validate = approval.node("Validate_Order")
    assert validate is not None and validate.function == "order_approval.steps.validate_order"


def test_a_dag_has_dependency_edges_a_parallel_step_and_a_loop_body(
    fulfillment: WorkflowGraph,
) -> None:
    assert fulfillment.dag
    assert [e for e in edges(fulfillment) if e[1] == "Charge_Payment"] == [
        ("Reserve_Stock", "Charge_Payment", "dependency", None),
        ("Check_Fraud", "Charge_Payment", "dependency", None),
        ("Quote_Shipping", "Charge_Payment", "dependency", None),
    ]
    assert [e.target for e in fulfillment.edges_from("Validate_Order")] == [
        "Reserve_Stock",
        "Check_Fraud",
        "Quote_Shipping",
    ]
    # Only the step nothing depends on ends the workflow.
    assert [e.source for e in fulfillment.edges if e.target == END] == ["Complete_Order"]

    allocate = fulfillment.node("Allocate_Items")
    assert allocate is not None and allocate.kind is StepKind.PARALLEL
    assert allocate.iterate_over == "state.items"
    assert allocate.function == "order_fulfillment.steps.allocate_line"
    assert allocate.tasks == ()

    ship = fulfillment.node("Ship_Packages")
    assert ship is not None and ship.kind is StepKind.LOOP and ship.body is not None
    assert ship.iterate_over == "state.packages" and ship.while_condition is None
    assert [node.name for node in ship.body.nodes] == ["Print_Label"]
    assert edges(ship.body) == [("Print_Label", END, "next", None)]
    assert ship.body.workflow_type is None


def test_the_graph_is_built_without_importing_functions_or_the_state_model(
    config: ConfigDir,
) -> None:
    graph = write(
        config,
        "Imaginary",
        """
        - name: First
          function: no_such_package.steps.first
        - name: Second
          function: no_such_package.steps.second
        """,
    )

    assert edges(graph) == [("First", "Second", "next", None), ("Second", END, "next", None)]
    with pytest.raises(DefinitionError, match="no_such_package"):
        DefinitionSource(config.registry_path, None, SimpleExpressionEvaluator()).compile(
            "Imaginary"
        )


def test_parsing_still_reports_every_problem_that_needs_no_import(config: ConfigDir) -> None:
    config.write(
        "Broken",
        """
        workflow_type: Broken
        initial_state_model: nowhere.State
        steps:
          - name: A
            function: nowhere.a
            colour: red
            routes:
              - condition: "state.x > 1"
                target: Missing
          - name: B
            function: nowhere.b
            next: Nowhere
        """,
    )
    source = DefinitionSource(config.registry_path, None, SimpleExpressionEvaluator())

    with pytest.raises(DefinitionError) as caught:
        source.parse("Broken")

    messages = [(issue.step, issue.key, issue.message) for issue in caught.value.issues]
    assert messages == [
        ("A", "colour", "unknown key 'colour'"),
        ("B", "next", "'next' names unknown step 'Nowhere' (or use END)"),
    ]  # A failed the schema, so its routes are checked once that is fixed


# -- every kind ----------------------------------------------------------------------------

KINDS = """
- name: Start
  function: app.start
- name: Fan_Out
  type: PARALLEL
  tasks:
    - name: left
      function: app.left
    - name: right
      function_path: app.right
- name: Decide
  type: DECISION
  function: app.decide
- name: Retry_Loop
  type: LOOP
  mode: WHILE
  while_condition: "state.tries < 3"
  loop_body:
    - name: Try
      function: app.try_once
      routes:
        - condition: "state.ok"
          target: Done_Early
    - name: Note
      function: app.note
      next: END
    - name: Done_Early
      function: app.done
- name: Child
  type: SUB_WORKFLOW
  target_workflow_type: ChildFlow
- name: Notify
  type: FIRE_AND_FORGET
  target_workflow_type: Notice
  next: Ask
- name: Skipped
  function: app.skipped
- name: Ask
  type: HUMAN_IN_LOOP
  routes:
    - condition: "state.answer == 'no'"
      target: Start
    - default: Finish
- name: Finish
  function: app.finish
"""


@pytest.fixture
def kinds(config: ConfigDir) -> WorkflowGraph:
    return write(config, "Kinds", KINDS)


def test_every_kind_gets_its_details(kinds: WorkflowGraph) -> None:
    fan_out = kinds.node("Fan_Out")
    assert fan_out is not None
    assert fan_out.tasks == (GraphTask("left", "app.left"), GraphTask("right", "app.right"))
    decide = kinds.node("Decide")
    assert decide is not None and decide.may_jump
    loop = kinds.node("Retry_Loop")
    assert loop is not None and loop.while_condition == "state.tries < 3"
    assert loop.iterate_over is None
    child = kinds.node("Child")
    assert child is not None and child.target_workflow_type == "ChildFlow"
    notify = kinds.node("Notify")
    assert notify is not None and notify.target_workflow_type == "Notice"


def test_edges_follow_next_routes_and_the_loop_body_order(kinds: WorkflowGraph) -> None:
    assert edges(kinds) == [
        ("Start", "Fan_Out", "next", None),
        ("Fan_Out", "Decide", "next", None),
        # Decide: its function jumps; a DECISION never falls through
        ("Retry_Loop", "Child", "next", None),
        ("Child", "Notify", "next", None),
        ("Notify", "Ask", "next", None),  # `next: Ask` skips Skipped
        ("Skipped", "Ask", "next", None),
        ("Ask", "Start", "route", "state.answer == 'no'"),
        ("Ask", "Finish", "route", "default"),  # a default route: no falling through
        ("Finish", END, "next", None),
    ]
    loop = kinds.node("Retry_Loop")
    assert loop is not None and loop.body is not None
    assert edges(loop.body) == [
        ("Try", "Done_Early", "route", "state.ok"),
        ("Try", "Note", "next", None),
        ("Note", END, "next", None),  # `next: END` ends the iteration
        ("Done_Early", END, "next", None),
    ]


def test_a_step_without_dependencies_in_a_dag_follows_the_step_before_it(
    config: ConfigDir,
) -> None:
    graph = write(
        config,
        "Mixed",
        """
        - name: A
          function: app.a
        - name: B
          function: app.b
          dependencies: [A]
        - name: C
          function: app.c
        - name: D
          function: app.d
          dependencies: [A]
        """,
    )

    assert graph.dag
    assert edges(graph) == [
        ("A", "B", "dependency", None),
        ("A", "D", "dependency", None),
        ("B", "C", "next", None),  # C declares none: it depends on B
        ("C", END, "next", None),
        ("D", END, "next", None),
    ]


# -- JSON and drawings ---------------------------------------------------------------------


def test_to_dict_is_json_with_nested_loop_bodies(kinds: WorkflowGraph) -> None:
    data = json.loads(json.dumps(kinds.to_dict()))

    assert data["workflow_type"] == "Kinds" and data["dag"] is False
    fan_out = data["nodes"][1]
    assert fan_out["name"] == "Fan_Out" and fan_out["kind"] == "PARALLEL"
    assert fan_out["tasks"] == [
        {"name": "left", "function": "app.left"},
        {"name": "right", "function": "app.right"},
    ]
    loop = data["nodes"][3]
    assert [node["name"] for node in loop["body"]["nodes"]] == ["Try", "Note", "Done_Early"]
    assert data["edges"][-2] == {
        "source": "Ask",
        "target": "Finish",
        "kind": "route",
        "condition": None,
        "label": "default",
    }


MERMAID = """\
graph TD
    Validate_Order["Validate_Order"]
    Check_Amount{"Check_Amount<br/>DECISION"}
    Auto_Approve["Auto_Approve"]
    Manager_Approval[/"Manager_Approval<br/>HUMAN_IN_LOOP"/]
    Complete_Order["Complete_Order"]
    Reject_Order["Reject_Order"]
    END((END))
    Validate_Order --> Check_Amount
    Check_Amount -->|"state.total > 1000"| Manager_Approval
    Check_Amount -->|"default"| Auto_Approve
    Auto_Approve --> Complete_Order
    Manager_Approval -->|"not state.approved"| Reject_Order
    Manager_Approval --> Complete_Order
    Complete_Order --> END
    Reject_Order --> END
"""


def test_mermaid(approval: WorkflowGraph) -> None:
    assert approval.to_mermaid() == MERMAID


def test_mermaid_draws_a_loop_body_as_a_subgraph(fulfillment: WorkflowGraph) -> None:
    drawing = fulfillment.to_mermaid()

    assert 'Ship_Packages(["Ship_Packages<br/>LOOP: for each of state.packages"])' in drawing
    body = drawing.split('subgraph Ship_Packages_body ["Ship_Packages: each iteration"]\n')[1]
    assert body.startswith('        Ship_Packages__Print_Label["Print_Label"]\n    end\n')
    # Into the body and back to the loop, drawn outside the subgraph.
    assert "\n    Ship_Packages -.-> Ship_Packages__Print_Label\n" in drawing
    assert "\n    Ship_Packages__Print_Label -.-> Ship_Packages\n" in drawing
    assert 'Allocate_Items[["Allocate_Items<br/>PARALLEL: for each of state.items"]]' in drawing


def test_mermaid_ids_are_safe_and_labels_escaped() -> None:
    graph = WorkflowGraph(
        "Odd",
        nodes=(
            _plain("check order", 0),
            _plain("check-order", 1),
            _plain("end", 2),
            _plain("1st", 3),
        ),
        edges=(
            GraphEdge("check order", "check-order", "route", 'state.name == "x"'),
            GraphEdge("check-order", "end", "next"),
            GraphEdge("end", "1st", "next"),
            GraphEdge("1st", END, "next"),
        ),
    )

    lines = graph.to_mermaid().splitlines()

    assert lines[1:5] == [
        '    check_order["check order"]',
        '    check_order_2["check-order"]',
        '    step_end["end"]',
        '    step_1st["1st"]',
    ]
    assert '    check_order -->|"state.name == #quot;x#quot;"| check_order_2' in lines
    assert "    step_1st --> END" in lines


def _plain(name: str, index: int) -> GraphNode:
    return GraphNode(name, StepKind.STANDARD, index)


def test_dot(approval: WorkflowGraph, fulfillment: WorkflowGraph) -> None:
    drawing = approval.to_dot()

    assert drawing.startswith("digraph workflow {\n")
    assert drawing.endswith("}\n")
    assert '    "Check_Amount" [label="Check_Amount\\nDECISION", shape=diamond];' in drawing
    assert '    "Check_Amount" -> "Manager_Approval" [label="state.total > 1000"];' in drawing
    assert '    "Check_Amount" -> "Auto_Approve" [label="default"];' in drawing
    assert '    "Reject_Order" -> "END";' in drawing
    looped = fulfillment.to_dot()
    assert '    subgraph "cluster_Ship_Packages" {' in looped
    assert '        "Ship_Packages/Print_Label" [label="Print_Label"];' in looped
    assert '    "Ship_Packages/Print_Label" -> "Ship_Packages" [style=dashed];' in looped
    assert '    "Reserve_Stock" -> "Charge_Payment" [style=bold];' in looped


def test_text(approval: WorkflowGraph, kinds: WorkflowGraph) -> None:
    assert approval.to_text().splitlines()[:6] == [
        "OrderApproval (6 steps)",
        "  Validate_Order [STANDARD] order_approval.steps.validate_order",
        "    -> Check_Amount",
        "  Check_Amount [DECISION]",
        "    -> Manager_Approval  if state.total > 1000",
        "    -> Auto_Approve  (default)",
    ]
    outline = kinds.to_text()
    assert "  Fan_Out [PARALLEL]\n    task left: app.left\n    task right: app.right\n" in outline
    assert (
        "  Retry_Loop [LOOP]\n"
        "    while state.tries < 3\n"
        "    body (END ends the iteration):\n"
        "      Try [STANDARD] app.try_once\n"
        "        -> Done_Early  if state.ok\n"
        "        -> Note\n"
    ) in outline
    assert "  Child [SUB_WORKFLOW]\n    runs ChildFlow\n" in outline
