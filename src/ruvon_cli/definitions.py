"""``ruvon validate``, ``ruvon run`` and ``ruvon schema``: workflow files, no database
(CLI-23, CLI-24).

**Which definition a file is.** A registry file (``workflows:``) stands for all its types. A
workflow file is checked as the type that a registry lists it under (the
``workflow_registry.yaml`` beside it, else the config directory's), so the registry entry's
``initial_state_model`` and other keys count; a file that no registry lists is checked on its
own and must name its ``initial_state_model`` itself.

**Imports.** ``validate`` checks the schema and everything across steps without importing
anything; ``--strict`` also imports every function, input model and the state model (the
working directory is importable) and checks the state fields conditions read. ``run`` always
imports: it runs the steps.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ruvon import Workflow, WorkflowBuilder, WorkflowStatus
from ruvon.definition.compiled import CompiledWorkflow, ParsedWorkflow
from ruvon.definition.graph import WorkflowGraph, definition_graph
from ruvon.definition.json_schema import workflow_json_schema
from ruvon.definition.loader import SourceDocument, read_yaml
from ruvon.definition.schema import WorkflowDefinition
from ruvon.definition.source import DefinitionSource
from ruvon.errors import DefinitionError, DefinitionIssue
from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
from ruvon.serialization import jsonable
from ruvon.settings import persistence_from_url
from ruvon_cli._context import (
    EXIT_ERROR,
    EXIT_USAGE,
    config_dir,
    console,
    fail,
    json_argument,
    print_json,
    run,
)

__all__ = ["register"]

REGISTRY_NAME = "workflow_registry.yaml"
MAX_CALLS = 10_000
"""``run`` gives up after this many ``next_step`` calls (a loop that never ends)."""


class GraphFormat(str, Enum):
    """How ``validate --graph`` draws the workflow."""

    mermaid = "mermaid"
    dot = "dot"
    text = "text"


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("validate")(validate)
    app.command("run")(run_file)
    app.command("schema")(schema)


# -- which definitions a file holds ------------------------------------------------------


@dataclass
class _Target:
    """The workflow types a file stands for, and where the builder finds them."""

    file: Path
    source: DefinitionSource
    types: list[str]
    registry: Path | None
    """The registry the types come from (None: the file is checked on its own)."""
    is_registry: bool = False
    notes: list[str] = field(default_factory=list)
    issues: list[DefinitionIssue] = field(default_factory=list)
    """Problems found before the types are checked."""

    def builder(self, **options: Any) -> WorkflowBuilder:
        """A builder reading the same definitions."""
        if self.registry is not None:
            return WorkflowBuilder(self.registry, **options)
        registry = {self.types[0]: {"config_file": self.file.name}}
        return WorkflowBuilder(registry, config_dir=self.file.parent, **options)


def _read(file: Path) -> SourceDocument:
    """The file's YAML; exit 2 when it cannot be read, DefinitionError for bad YAML."""
    if not file.exists():
        fail(f"No such file: {file}", EXIT_USAGE)
    if not file.is_file():
        fail(f"Not a file: {file}", EXIT_USAGE)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {file}: {getattr(exc, 'strerror', None) or exc}", EXIT_USAGE)
    return read_yaml(text, str(file))


def _registries(file: Path) -> list[Path]:
    """The registry files that may list ``file``: beside it, then the config directory's."""
    found: list[Path] = []
    directory = config_dir()
    for candidate in (
        file.parent / REGISTRY_NAME,
        *([directory / REGISTRY_NAME] if directory else []),
    ):
        resolved = candidate.resolve()
        if (
            candidate.is_file()
            and resolved != file.resolve()
            and all(path.resolve() != resolved for path in found)
        ):
            found.append(candidate)
    return found


def _target(file: Path) -> _Target:
    """Which types ``file`` stands for; raises DefinitionError when none can be read."""
    document = _read(file)
    data = document.data
    evaluator = SimpleExpressionEvaluator()
    if isinstance(data, dict) and "workflows" in data and "steps" not in data:
        source = DefinitionSource(file, None, evaluator)
        return _Target(file, source, source.list_workflow_types(), file, is_registry=True)
    notes: list[str] = []
    for registry in _registries(file):
        try:
            source = DefinitionSource(registry, None, evaluator)
        except DefinitionError as exc:
            count = len(exc.issues)
            notes.append(
                f"the registry {registry} has {count} problem{'s' if count != 1 else ''} "
                f"(see: ruvon validate {registry}); {file} was checked on its own"
            )
            continue
        workflow_type = source.type_of_file(file)
        if workflow_type is not None:
            return _Target(file, source, [workflow_type], registry, notes=notes)
    declared = data.get("workflow_type") if isinstance(data, dict) else None
    issues = []
    if not isinstance(declared, str) or not declared:
        issues.append(
            document.lines.issue("missing required key 'workflow_type'", (), key="workflow_type")
        )
        declared = "Workflow"
    if not isinstance(data, dict) or not (
        data.get("initial_state_model") or data.get("initial_state_model_path")
    ):
        # Worth saying when the file lacks what a registry entry would give it.
        paths = _registries(file) or [file.parent / REGISTRY_NAME]
        looked = " or ".join(str(path) for path in paths)
        notes.append(f"no registry lists {file} (looked in {looked}); it was checked on its own")
    source = DefinitionSource({declared: {"config_file": file.name}}, file.parent, evaluator)
    return _Target(file, source, [declared], None, notes=notes, issues=issues)


# -- validate ----------------------------------------------------------------------------


@dataclass
class _Report:
    valid: bool
    errors: list[DefinitionIssue]
    warnings: list[DefinitionIssue]
    definitions: dict[str, WorkflowDefinition]
    target: _Target | None


def _check(file: Path, strict: bool) -> _Report:
    try:
        target = _target(file)
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


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


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
        _say(f"✓ Valid: {file} ({types}; {checked})")
    else:
        _say(f"✗ {file}: {_plural(len(report.errors), 'problem')}")
        for number, issue in enumerate(report.errors, 1):
            _say(f"  {number}. {issue}")
    for issue in report.warnings:
        _say(f"  warning: {issue}")
    if target is not None and not report.valid:
        for note in target.notes:
            _say(f"  note: {note}")
    if drawn is not None:
        _say("")
        diagram = _diagram(drawn, how).rstrip("\n")
        _say(f"```mermaid\n{diagram}\n```" if how is GraphFormat.mermaid else diagram)


# -- run ---------------------------------------------------------------------------------


class _StepPrinter:
    """A workflow observer (the engine calls the hooks a class has): prints (or collects, for
    --json) each step as it finishes, in every workflow of the run (a sub-workflow's steps
    are marked with its type)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.root: str | None = None
        self.types: dict[str, str] = {}
        self.steps: list[dict[str, Any]] = []

    async def on_workflow_started(
        self, workflow_id: str, workflow_type: str, initial_state: Any
    ) -> None:
        self.types[workflow_id] = workflow_type
        if self.root is None:
            self.root = workflow_id

    def _record(self, workflow_id: str, step_name: str, status: str, **more: Any) -> None:
        entry = {
            "workflow_id": workflow_id,
            "workflow_type": self.types.get(workflow_id),
            "step": step_name,
            "status": status,
            **more,
        }
        self.steps.append(entry)
        if self.quiet:
            return
        where = "" if workflow_id == self.root else f"[{self.types.get(workflow_id, '?')}] "
        noun, suffix = ("Steps", " (at once)") if "stage" in more else ("Step", "")
        _say(f"{noun} {where}{step_name}{suffix}: {status}")
        if more.get("result"):
            _say(f"  Result: {_compact(more['result'])}")
        if more.get("error"):
            _say(f"  Error: {more['error']}")

    async def on_step_executed(
        self,
        workflow_id: str,
        step_name: str,
        status: str,
        result: dict[str, Any] | None,
        duration_ms: float | None = None,
    ) -> None:
        extra: dict[str, Any] = {"result": jsonable(result or {})}
        if duration_ms is not None and math.isfinite(duration_ms):
            extra["duration_ms"] = round(duration_ms, 3)
        self._record(workflow_id, step_name, status, **extra)

    async def on_step_failed(self, workflow_id: str, step_name: str, error_message: str) -> None:
        self._record(workflow_id, step_name, "FAILED", error=error_message)

    async def on_compensation_completed(
        self, workflow_id: str, step_name: str, success: bool, error: str | None = None
    ) -> None:
        status = "COMPENSATED" if success else "COMPENSATION FAILED"
        self._record(workflow_id, step_name, status, **({"error": error} if error else {}))

    async def on_stage_completed(
        self,
        workflow_id: str,
        step_names: list[str],
        dispatched: list[str],
        result: dict[str, Any] | None,
    ) -> None:
        """Steps of a workflow with dependencies that ran at the same time (one commit)."""
        if step_names:
            extra = {"result": jsonable(result or {}), "stage": list(step_names)}
            self._record(workflow_id, ", ".join(step_names), "COMPLETED", **extra)
        for name in dispatched:
            self._record(workflow_id, name, "DISPATCHED")


def _compact(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, default=str)


def _state(workflow: Workflow) -> Any:
    return workflow.to_dict()["state"]


def _input_fields(workflow: Workflow) -> list[str]:
    schema = workflow.input_schema()
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return list(properties) if isinstance(properties, dict) else []


def run_file(
    file: Annotated[Path, typer.Argument(metavar="YAML_FILE", help="The workflow file to run.")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", metavar="JSON", help="The initial state as a JSON object."),
    ] = None,
    data_file: Annotated[
        Path | None,
        typer.Option(
            "--data-file", metavar="PATH", help="A file holding the initial state as JSON."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Run a workflow file once, in memory (nothing is stored; no database is needed): create
    the workflow and run its steps until it completes, fails or waits, printing each step's
    result and the final state.

    The type is the one a registry lists the file under (see ruvon validate), so its
    sub-workflows can run too. At a step that waits for input (HUMAN_IN_LOOP, a pause) the
    run stops with a message naming the step and exits 0: waiting is not an error, but the
    run is not kept; use ruvon start and ruvon resume for a stored run. A failing step exits
    1 with its error.

    Example: ruvon run config/order_approval.yaml --data-file order.json
    """

    async def work() -> None:
        initial = json_argument(data, data_file, "--data")
        target = _target(file)
        if target.issues:
            raise DefinitionError(target.issues, source=str(file))
        if target.is_registry:
            fail(f"{file} is a registry; give one of its workflow files.", EXIT_USAGE)
        printer = _StepPrinter(quiet=json_output)
        builder = target.builder(
            persistence_provider=persistence_from_url("memory://"),
            workflow_observer=printer,
            heartbeat_interval_seconds=None,
        )
        try:
            await _run(builder, target.types[0], initial, printer, json_output)
        finally:
            await builder.close()

    run(work)


async def _run(
    builder: WorkflowBuilder,
    workflow_type: str,
    initial: dict[str, Any],
    printer: _StepPrinter,
    json_output: bool,
) -> None:
    workflow = await builder.create_workflow(workflow_type, initial)
    if not json_output:
        _say(f"Workflow ID: {workflow.id} ({workflow_type}, in memory)")
    error: str | None = None
    try:
        for _ in range(MAX_CALLS):
            if workflow.status is not WorkflowStatus.ACTIVE:
                break
            await workflow.next_step()
        else:
            fail(f"The workflow was still ACTIVE after {MAX_CALLS} steps; stopped.")
    except Exception as exc:
        if getattr(exc, "workflow_status", None) is None:
            raise  # not a step's failure: run() reports it
        step = getattr(exc, "step_name", None) or "?"
        error = f"Step '{step}' failed: {type(exc).__name__}: {exc}"
    status = workflow.status
    waiting = status.is_waiting or status in (
        WorkflowStatus.PENDING_ASYNC,
        WorkflowStatus.PENDING_SUB_WORKFLOW,
        WorkflowStatus.WAITING_CHILD_HUMAN_INPUT,
    )
    failed = error is not None or (status.is_terminal and status is not WorkflowStatus.COMPLETED)
    if error is None and failed:
        error = workflow.error_message or f"The workflow ended {status.value}."
    step = workflow.current_step_name
    if json_output:
        output: dict[str, Any] = {
            "workflow_id": workflow.id,
            "workflow_type": workflow_type,
            "status": status.value,
            "current_step": step,
            "waiting_for_input": waiting,
            "steps": printer.steps,
            "state": _state(workflow),
        }
        if error is not None:
            output["error"] = error
        print_json(output)
    else:
        _say(f"Status: {status.value}")
        if waiting:
            _say(_wait_message(workflow, workflow_type, printer))
        _say("Final state:" if status.is_terminal else "State:")
        _say(json.dumps(_state(workflow), indent=2, ensure_ascii=False, default=str))
        if status is WorkflowStatus.COMPLETED:
            _say(f"Successfully completed workflow {workflow.id}")
    if failed:
        fail(f"{error}; the workflow is {status.value} (in memory: nothing stored)", EXIT_ERROR)


def _wait_message(workflow: Workflow, workflow_type: str, printer: _StepPrinter) -> str:
    step = workflow.current_step_name or "?"
    child_step = workflow.metadata.get("waiting_child_step")
    if workflow.status.is_waiting:
        fields = _input_fields(workflow)
        wanted = f" ({', '.join(fields)})" if fields else ""
        what = f"waits at step {step} for input{wanted}"
    elif child_step:
        child = printer.types.get(str(workflow.metadata.get("waiting_child_id")), "sub-workflow")
        what = f"waits at step {step} for its {child}, which waits at step {child_step} for input"
    else:
        what = f"waits at step {step} ({workflow.status.value})"
    return (
        f"The workflow {what}. ruvon run keeps nothing, so this run ends here. For a run "
        f"that waits, start a stored one (ruvon start {workflow_type} --data ...) and answer "
        f"it with ruvon resume <id> --input '<JSON>'."
    )


# -- schema ------------------------------------------------------------------------------


def schema(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the schema to FILE instead of stdout."
        ),
    ] = None,
) -> None:
    """Print the JSON Schema of workflow files, for editors: completion, hover help and
    errors as you type. In VS Code (YAML extension), save it and map it in settings.json:
    "yaml.schemas": {"./ruvon-workflow.schema.json": ["config/*.yaml",
    "!config/workflow_registry.yaml"]}. Checks across steps (route targets, cycles) need
    ruvon validate.

    Example: ruvon schema --output ruvon-workflow.schema.json
    """

    async def work() -> None:
        text = json.dumps(workflow_json_schema(), indent=2, ensure_ascii=False) + "\n"
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"Cannot write {output}: {exc.strerror or exc}", EXIT_USAGE)
        _say(f"Wrote the JSON Schema of workflow files to {output}")

    run(work)
