"""``ruvon validate``: check a workflow file or a registry file, no database (of CLI-23, CLI-24).

Which definitions a file stands for is :mod:`ruvon_cli._definition_files`. ``validate`` checks
the schema and everything across steps without importing anything; ``--strict`` also imports
every function, input model and the state model (the working directory is importable) and
checks the state fields conditions read. With ``--graph`` it draws the workflow. The command
is registered by :func:`ruvon_cli.definitions.register`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ruvon.definition.compiled import CompiledWorkflow, ParsedWorkflow
from ruvon.definition.graph import WorkflowGraph, definition_graph
from ruvon.definition.schema import WorkflowDefinition
from ruvon.errors import DefinitionError, DefinitionIssue
from ruvon_cli._context import EXIT_ERROR, EXIT_USAGE, fail, print_json, run
from ruvon_cli._definition_files import Target, say, target_of

__all__ = ["GraphFormat", "validate"]


class GraphFormat(str, Enum):
    """How ``validate --graph`` draws the workflow."""

    mermaid = "mermaid"
    dot = "dot"
    text = "text"


@dataclass
class _Report:
    valid: bool
    errors: list[DefinitionIssue]
    warnings: list[DefinitionIssue]
    definitions: dict[str, WorkflowDefinition]
    target: Target | None


def _check(file: Path, strict: bool) -> _Report:
    try:
        target = target_of(file)
    except DefinitionError as exc:
        return _Report(False, list(exc.issues), [], {}, None)
    errors = list(target.issues)
    warnings: list[DefinitionIssue] = []
    definitions: dict[str, WorkflowDefinition] = {}
    for workflow_type in target.types:
        try:
            checked: CompiledWorkflow | ParsedWorkflow = (
                target.source.compile(workflow_type)
                if strict
                else target.source.parse(workflow_type)
            )
        except DefinitionError as exc:
            errors.extend(exc.issues)
            continue
        warnings.extend(checked.warnings)
        definitions[workflow_type] = checked.definition
    return _Report(not errors, errors, warnings, definitions, target)


def _issue_json(issue: DefinitionIssue) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "file": issue.file,
        "line": issue.line,
        "step": issue.step,
        "key": issue.key,
        "message": issue.message,
    }
    if issue.column is not None:
        entry["column"] = issue.column
    return entry


def _diagram(graph: WorkflowGraph, how: GraphFormat) -> str:
    if how is GraphFormat.dot:
        return graph.to_dot()
    if how is GraphFormat.text:
        return graph.to_text()
    return graph.to_mermaid()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def validate(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A workflow YAML file or a registry file.")
    ],
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also import every function, input model and the state model (the working "
            "directory is importable), and check the state fields that conditions read.",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    graph: Annotated[
        bool, typer.Option("--graph", help="Draw the workflow's steps and routes (if valid).")
    ] = False,
    graph_format: Annotated[
        GraphFormat | None,
        typer.Option(
            "--graph-format",
            case_sensitive=False,
            help="How to draw it: mermaid (default), dot or text; implies --graph.",
        ),
    ] = None,
) -> None:
    """Check a workflow file and list every problem at once, each with its file, line, step
    and key. Exit 0 if valid, 1 if not, 2 if the file cannot be read.

    A workflow file is checked as the type a registry lists it under (the
    workflow_registry.yaml beside it, else ./config's), so the registry entry's
    initial_state_model counts; a registry file is checked with all its types. Without
    --strict nothing is imported, so a file can be checked where its code is not installed.

    Example: ruvon validate config/order_approval.yaml --graph
    """
    drawing = graph or graph_format is not None
    how = graph_format or GraphFormat.mermaid

    async def work() -> None:
        if strict:
            # The warnings are reported below; the SDK's log of them would repeat them.
            logging.getLogger("ruvon.definition").addHandler(logging.NullHandler())
        report = _check(file, strict)
        target = report.target
        if drawing and target is not None and target.is_registry:
            fail(
                f"--graph draws one workflow, and {file} is a registry "
                f"({_plural(len(target.types), 'type')}); give one of its workflow files.",
                EXIT_USAGE,
            )
        graphs = {name: definition_graph(d) for name, d in report.definitions.items()}
        drawn = next(iter(graphs.values())) if drawing and report.valid and graphs else None
        if json_output:
            _validate_json(file, report, drawing, drawn, how)
        else:
            _validate_text(file, report, strict, drawn, how)
        if not report.valid:
            raise typer.Exit(EXIT_ERROR)

    run(work)


def _validate_json(
    file: Path, report: _Report, drawing: bool, drawn: WorkflowGraph | None, how: GraphFormat
) -> None:
    target = report.target
    output: dict[str, Any] = {
        "valid": report.valid,
        "file": str(file),
        "workflow_types": target.types if target is not None else [],
        "registry": str(target.registry) if target and target.registry else None,
        "errors": [_issue_json(issue) for issue in report.errors],
        "warnings": [_issue_json(issue) for issue in report.warnings],
        "notes": target.notes if target is not None else [],
    }
    if drawing:
        output["graph"] = drawn.to_dict() if drawn is not None else None
        output["diagram"] = _diagram(drawn, how) if drawn is not None else None
    print_json(output)


def _validate_text(
    file: Path, report: _Report, strict: bool, drawn: WorkflowGraph | None, how: GraphFormat
) -> None:
    target = report.target
    if report.valid:
        types = (", ".join(target.types) if target is not None else "") or "no workflow types"
        checked = "imports checked" if strict else "functions not imported, see --strict"
        say(f"✓ Valid: {file} ({types}; {checked})")
    else:
        say(f"✗ {file}: {_plural(len(report.errors), 'problem')}")
        for number, issue in enumerate(report.errors, 1):
            say(f"  {number}. {issue}")
    for issue in report.warnings:
        say(f"  warning: {issue}")
    if target is not None and not report.valid:
        for note in target.notes:
            say(f"  note: {note}")
    if drawn is not None:
        say("")
        diagram = _diagram(drawn, how).rstrip("\n")
        say(f"```mermaid\n{diagram}\n```" if how is GraphFormat.mermaid else diagram)
