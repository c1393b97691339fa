"""A workflow definition as a graph: its steps (nodes) and where each one can lead (edges),
for ``ruvon validate --graph``, the server and the web page. Built from the parsed definition
alone (:class:`~ruvon.definition.schema.WorkflowDefinition`), so it needs none of the
workflow's code.

The edges follow the engine's rules:

- ``next``: where a step goes when nothing else decides: its ``next:`` (a step or ``END``),
  else the step after it in the file, ``END`` after the last one. A DECISION step has none (it
  routes, or fails when no route matches), and neither has a step whose routes end with a
  ``default``. In a workflow with ``dependencies`` (``dag``), ``next:`` is not used; a step
  that declares no dependencies depends on the step before it in the file, which is drawn as
  a ``next`` edge from that step.
- ``route``: a route of a STANDARD, DECISION or HUMAN_IN_LOOP step, labelled with its
  condition or ``default``.
- ``dependency``: from each declared dependency to the step that needs it. In a ``dag``
  workflow, the steps nothing depends on lead to ``END``.

Jumps are not drawn: a function decides them at run time (``may_jump`` marks a DECISION step
with a function). A LOOP node holds its body as a graph of its own (``END`` there ends the
iteration); a PARALLEL node lists its tasks; SUB_WORKFLOW, FIRE_AND_FORGET and CRON_SCHEDULE
nodes name the workflow type they start.

Example::

    graph = definition_graph(definition)
    print(graph.to_mermaid())   # graph TD ... Check_Amount -->|"default"| Auto_Approve
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ruvon.definition.schema import (
    CronScheduleStep,
    DecisionStep,
    FireAndForgetStep,
    HumanInLoopStep,
    LoopStep,
    ParallelStep,
    StandardStep,
    StepDefinition,
    SubWorkflowStep,
    WorkflowDefinition,
)
from ruvon.definition.validate import END
from ruvon.models import StepKind

__all__ = [
    "END",
    "EdgeKind",
    "GraphEdge",
    "GraphNode",
    "GraphTask",
    "WorkflowGraph",
    "definition_graph",
    "steps_graph",
]

EdgeKind = Literal["next", "route", "dependency"]
"""What an edge stands for; see the module."""


@dataclass(frozen=True)
class GraphTask:
    """One task of a static PARALLEL step."""

    name: str
    function: str


@dataclass(frozen=True)
class GraphEdge:
    """``source`` can lead to ``target`` (a step name, or ``END``)."""

    source: str
    target: str
    kind: EdgeKind
    condition: str | None = None
    """A route's condition (after parameter substitution); None for a default route."""

    @property
    def label(self) -> str | None:
        """What a drawing writes on the edge: a route's condition or ``default``."""
        if self.kind != "route":
            return None
        return self.condition if self.condition is not None else "default"

    def to_dict(self) -> dict[str, Any]:
        """The edge as JSON."""
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind,
            "condition": self.condition,
            "label": self.label,
        }


@dataclass(frozen=True)
class GraphNode:
    """One step."""

    name: str
    kind: StepKind
    index: int
    """The step's position in its list (the file's steps, or its loop's body)."""
    function: str | None = None
    """The step's function (a dynamic PARALLEL step: the function run for each item)."""
    description: str | None = None
    automate_next: bool = False
    tasks: tuple[GraphTask, ...] = ()
    """A static PARALLEL step's tasks."""
    iterate_over: str | None = None
    """The list a dynamic PARALLEL step or an ITERATE loop goes through."""
    while_condition: str | None = None
    """A WHILE loop's condition."""
    body: WorkflowGraph | None = None
    """A LOOP's body."""
    target_workflow_type: str | None = None
    """The type a SUB_WORKFLOW, FIRE_AND_FORGET or CRON_SCHEDULE step starts."""
    may_jump: bool = False
    """A DECISION step with a function, which may jump to any step."""

    @property
    def detail(self) -> str | None:
        """One short phrase about what the step does beyond its kind, or None."""
        if self.kind is StepKind.PARALLEL:
            if self.tasks:
                return "tasks: " + ", ".join(task.name for task in self.tasks)
            return f"for each of {self.iterate_over}"
        if self.kind is StepKind.LOOP:
            if self.while_condition is not None:
                return f"while {self.while_condition}"
            return f"for each of {self.iterate_over}"
        if self.kind is StepKind.SUB_WORKFLOW:
            return f"runs {self.target_workflow_type}"
        if self.kind is StepKind.FIRE_AND_FORGET:
            return f"starts {self.target_workflow_type}"
        if self.kind is StepKind.CRON_SCHEDULE:
            return f"schedules {self.target_workflow_type}"
        if self.may_jump:
            return "its function may jump"
        return None

    @property
    def caption(self) -> str | None:
        """The kind and detail, as drawings write them under the name (None for a plain
        STANDARD step)."""
        detail = self.detail
        if self.kind is StepKind.STANDARD and detail is None:
            return None
        return f"{self.kind.value}: {detail}" if detail else self.kind.value

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "index": self.index,
            "function": self.function,
            "description": self.description,
            "automate_next": self.automate_next,
            "tasks": [{"name": task.name, "function": task.function} for task in self.tasks],
            "iterate_over": self.iterate_over,
            "while_condition": self.while_condition,
            "target_workflow_type": self.target_workflow_type,
            "may_jump": self.may_jump,
            "body": self.body.to_dict() if self.body is not None else None,
        }


@dataclass(frozen=True)
class WorkflowGraph:
    """The steps of a workflow (or of a loop body) and the edges between them."""

    workflow_type: str | None
    """None for a loop body."""
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    dag: bool = False
    """True when a step declares ``dependencies``: steps then run when their dependencies
    are done."""

    def node(self, name: str) -> GraphNode | None:
        """The node of the step called ``name``, or None."""
        return next((node for node in self.nodes if node.name == name), None)

    def edges_from(self, name: str) -> list[GraphEdge]:
        """The edges leaving the step called ``name``, in order."""
        return [edge for edge in self.edges if edge.source == name]

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON: ``{workflow_type, dag, nodes: [...], edges: [...]}``."""
        return {
            "workflow_type": self.workflow_type,
            "dag": self.dag,
            "nodes": [node.to_dict() for node in self.nodes],
            "edges": [edge.to_dict() for edge in self.edges],
        }

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (``graph TD`` ...), without the Markdown fence."""
        return _Mermaid().render(self)

    def to_dot(self) -> str:
        """A Graphviz graph (``digraph workflow { ... }``)."""
        return _Dot().render(self)

    def to_text(self) -> str:
        """An indented outline: each step, then where it leads."""
        title = self.workflow_type or "steps"
        count = len(self.nodes)
        how = ", run by their dependencies" if self.dag else ""
        lines = [f"{title} ({count} step{'s' if count != 1 else ''}{how})"]
        _outline(self, lines, "  ")
        return "\n".join(lines) + "\n"


# -- building ----------------------------------------------------------------------------


def definition_graph(definition: WorkflowDefinition) -> WorkflowGraph:
    """The graph of a parsed workflow definition."""
    return steps_graph(definition.steps, definition.workflow_type)


def steps_graph(steps: Sequence[StepDefinition], workflow_type: str | None = None) -> WorkflowGraph:
    """The graph of a list of steps (a workflow's, or a loop body's)."""
    nodes = tuple(_node(step, index) for index, step in enumerate(steps))
    dag = any(step.dependencies for step in steps)
    edges = _dag_edges(steps) if dag else _sequence_edges(steps)
    position = {step.name: index for index, step in enumerate(steps)}
    ordered = sorted(enumerate(edges), key=lambda item: (position.get(item[1].source, 0), item[0]))
    return WorkflowGraph(workflow_type, nodes, tuple(edge for _, edge in ordered), dag)


def _node(step: StepDefinition, index: int) -> GraphNode:
    function = getattr(step, "function", None)
    tasks: tuple[GraphTask, ...] = ()
    iterate_over = while_condition = target = None
    body = None
    if isinstance(step, ParallelStep):
        tasks = tuple(GraphTask(task.name, task.function_path) for task in step.tasks)
        iterate_over = step.iterate_over
        function = step.task_function
    elif isinstance(step, LoopStep):
        iterate_over = step.iterate_over if step.mode == "ITERATE" else None
        while_condition = step.while_condition if step.mode == "WHILE" else None
        body = steps_graph(step.loop_body)
    elif isinstance(step, (SubWorkflowStep, FireAndForgetStep, CronScheduleStep)):
        target = step.target_workflow_type
    return GraphNode(
        name=step.name,
        kind=step.kind,
        index=index,
        function=function if isinstance(function, str) else None,
        description=step.description,
        automate_next=step.automate_next,
        tasks=tasks,
        iterate_over=iterate_over,
        while_condition=while_condition,
        body=body,
        target_workflow_type=target,
        may_jump=isinstance(step, DecisionStep) and step.function is not None,
    )


def _route_edges(step: StepDefinition) -> list[GraphEdge]:
    if not isinstance(step, (StandardStep, DecisionStep, HumanInLoopStep)):
        return []
    return [
        GraphEdge(step.name, route.destination, "route", route.condition) for route in step.routes
    ]


def _falls_through(step: StepDefinition) -> bool:
    """Whether ``step`` can go on to its ``next`` (it does unless it always routes)."""
    if isinstance(step, DecisionStep):
        return False
    return not any(edge.condition is None for edge in _route_edges(step))


def _sequence_edges(steps: Sequence[StepDefinition]) -> list[GraphEdge]:
    edges: list[GraphEdge] = []
    for index, step in enumerate(steps):
        edges.extend(_route_edges(step))
        if not _falls_through(step):
            continue
        following = steps[index + 1].name if index + 1 < len(steps) else END
        edges.append(GraphEdge(step.name, step.next or following, "next"))
    return edges


def _dag_edges(steps: Sequence[StepDefinition]) -> list[GraphEdge]:
    edges: list[GraphEdge] = []
    needed: set[str] = set()
    for index, step in enumerate(steps):
        if step.dependencies:
            for dependency in step.dependencies:
                edges.append(GraphEdge(dependency, step.name, "dependency"))
                needed.add(dependency)
        elif index > 0:
            edges.append(GraphEdge(steps[index - 1].name, step.name, "next"))
            needed.add(steps[index - 1].name)
        edges.extend(_route_edges(step))
    edges.extend(
        GraphEdge(step.name, END, "next")
        for step in steps
        if step.name not in needed and _falls_through(step)
    )
    return edges


# -- drawing -----------------------------------------------------------------------------


def _outline(graph: WorkflowGraph, lines: list[str], indent: str) -> None:
    for node in graph.nodes:
        head = f"{indent}{node.name} [{node.kind.value}]"
        if node.function and not node.tasks:
            head += f" {node.function}"
        lines.append(head)
        inner = indent + "  "
        if node.description:
            lines.append(f"{inner}{node.description}")
        detail = node.detail
        if detail and not node.tasks:
            lines.append(f"{inner}{detail}")
        lines.extend(f"{inner}task {task.name}: {task.function}" for task in node.tasks)
        if node.body is not None:
            lines.append(f"{inner}body (END ends the iteration):")
            _outline(node.body, lines, inner + "  ")
        for edge in graph.edges_from(node.name):
            arrow = f"{inner}-> {edge.target}"
            if edge.kind == "route":
                arrow += f"  if {edge.condition}" if edge.condition is not None else "  (default)"
            elif edge.kind == "dependency":
                arrow += "  (dependency)"
            lines.append(arrow)


_MERMAID_RESERVED = frozenset(
    {"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click", "linkstyle"}
)


class _Mermaid:
    """Renders one graph; node ids are the step names made safe (unique per drawing)."""

    def __init__(self) -> None:
        self.used: set[str] = {"END"}
        self.out: list[str] = ["graph TD"]

    def render(self, graph: WorkflowGraph) -> str:
        self._graph(graph, "", "    ", None, [])
        return "\n".join(self.out) + "\n"

    def _id(self, name: str, prefix: str) -> str:
        base = prefix + (re.sub(r"[^A-Za-z0-9_]", "_", name) or "step")
        if base[0].isdigit() or base.lower() in _MERMAID_RESERVED:
            base = f"step_{base}"
        candidate, number = base, 2
        while candidate in self.used:
            candidate, number = f"{base}_{number}", number + 1
        self.used.add(candidate)
        return candidate

    def _graph(
        self, graph: WorkflowGraph, prefix: str, indent: str, loop: str | None, back: list[str]
    ) -> dict[str, str]:
        """Draw ``graph`` (a loop body when ``loop`` is the loop's id; its edges back to the
        loop go to ``back``, drawn after the subgraph so the loop stays outside); return the
        node ids."""
        ids = {node.name: self._id(node.name, prefix) for node in graph.nodes}
        for node in graph.nodes:
            ident = ids[node.name]
            self.out.append(f"{indent}{ident}{self._shape(node)}")
            if node.body is not None:
                title = _mermaid_text(f"{node.name}: each iteration")
                self.out.append(f'{indent}subgraph {ident}_body ["{title}"]')
                returns: list[str] = []
                inner = self._graph(node.body, f"{ident}__", indent + "    ", ident, returns)
                self.out.append(f"{indent}end")
                if node.body.nodes:
                    self.out.append(f"{indent}{ident} -.-> {inner[node.body.nodes[0].name]}")
                self.out.extend(f"{indent}{line}" for line in returns)
        if loop is None and any(edge.target == END for edge in graph.edges):
            self.out.append(f"{indent}END((END))")
        for edge in graph.edges:
            source = self._known(ids, edge.source, prefix)
            if edge.target == END:
                if loop is not None:  # the iteration ends: back to the loop step
                    back.append(f"{source} -.-> {loop}")
                    continue
                target = "END"
            else:
                target = self._known(ids, edge.target, prefix)
            label = edge.label
            arrow = "-->" if label is None else f'-->|"{_mermaid_text(label)}"|'
            self.out.append(f"{indent}{source} {arrow} {target}")
        return ids

    def _known(self, ids: dict[str, str], name: str, prefix: str) -> str:
        """The id of ``name`` (one is made for a name that is no node: an unchecked target)."""
        if name not in ids:
            ids[name] = self._id(name, prefix)
        return ids[name]

    @staticmethod
    def _shape(node: GraphNode) -> str:
        text = _mermaid_text(node.name)
        caption = node.caption
        if caption is not None:
            text += "<br/>" + _mermaid_text(caption)
        opening, closing = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
        return f'{opening}"{text}"{closing}'


_MERMAID_SHAPES = {
    StepKind.DECISION: ("{", "}"),
    StepKind.HUMAN_IN_LOOP: ("[/", "/]"),
    StepKind.PARALLEL: ("[[", "]]"),
    StepKind.SUB_WORKFLOW: ("[[", "]]"),
    StepKind.LOOP: ("([", "])"),
    StepKind.ASYNC: ("(", ")"),
    StepKind.HTTP: ("(", ")"),
    StepKind.FIRE_AND_FORGET: (">", "]"),
    StepKind.CRON_SCHEDULE: (">", "]"),
}


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label (a double quote is written as an entity)."""
    return text.replace('"', "#quot;").replace("\n", " ")


class _Dot:
    """Renders one graph in Graphviz's language; node ids are the quoted step names (a loop
    body's prefixed with the loop's name and a slash)."""

    def __init__(self) -> None:
        self.out = ["digraph workflow {", "    rankdir=TB;", "    node [shape=box, style=rounded];"]

    def render(self, graph: WorkflowGraph) -> str:
        self._graph(graph, "", "    ", None, [])
        self.out.append("}")
        return "\n".join(self.out) + "\n"

    def _graph(
        self, graph: WorkflowGraph, prefix: str, indent: str, loop: str | None, back: list[str]
    ) -> None:
        """As :meth:`_Mermaid._graph`."""
        for node in graph.nodes:
            ident = _dot_string(prefix + node.name)
            label = node.name if node.caption is None else f"{node.name}\n{node.caption}"
            attributes = [f"label={_dot_string(label)}"]
            shape = _DOT_SHAPES.get(node.kind)
            if shape is not None:
                attributes.append(f"shape={shape}")
            self.out.append(f"{indent}{ident} [{', '.join(attributes)}];")
            if node.body is not None:
                inner = prefix + node.name
                self.out.append(f"{indent}subgraph {_dot_string('cluster_' + inner)} {{")
                self.out.append(f"{indent}    label={_dot_string(f'{node.name}: each iteration')};")
                returns: list[str] = []
                self._graph(node.body, inner + "/", indent + "    ", inner, returns)
                self.out.append(f"{indent}}}")
                if node.body.nodes:
                    first = _dot_string(f"{inner}/{node.body.nodes[0].name}")
                    self.out.append(f"{indent}{ident} -> {first} [style=dashed];")
                self.out.extend(f"{indent}{line}" for line in returns)
        if loop is None and any(edge.target == END for edge in graph.edges):
            self.out.append(f'{indent}"END" [shape=doublecircle, label="END"];')
        for edge in graph.edges:
            source = _dot_string(prefix + edge.source)
            attributes = []
            if edge.target == END:
                if loop is not None:  # the iteration ends: back to the loop step
                    back.append(f"{source} -> {_dot_string(loop)} [style=dashed];")
                    continue
                target = '"END"'
            else:
                target = _dot_string(prefix + edge.target)
            if edge.label is not None:
                attributes.append(f"label={_dot_string(edge.label)}")
            if edge.kind == "dependency":
                attributes.append("style=bold")
            suffix = f" [{', '.join(attributes)}]" if attributes else ""
            self.out.append(f"{indent}{source} -> {target}{suffix};")


_DOT_SHAPES = {
    StepKind.DECISION: "diamond",
    StepKind.HUMAN_IN_LOOP: "parallelogram",
    StepKind.PARALLEL: "box3d",
    StepKind.SUB_WORKFLOW: "component",
    StepKind.LOOP: "hexagon",
}


def _dot_string(text: str) -> str:
    """A double-quoted DOT string (JSON's escaping is DOT's for quotes, backslashes and
    newlines)."""
    return json.dumps(text, ensure_ascii=False)
