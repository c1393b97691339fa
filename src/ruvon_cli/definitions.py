"""``ruvon run`` and ``ruvon schema``: workflow files, no database (of CLI-23, CLI-24).

``run`` runs a workflow file once, in memory; it always imports (it runs the steps). Which
definitions a file stands for is :mod:`ruvon_cli._definition_files`. ``schema`` prints the JSON
Schema of workflow files. :func:`register` also adds ``validate``
(:mod:`ruvon_cli.validate_cmd`), first.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from ruvon import Workflow, WorkflowBuilder, WorkflowStatus
from ruvon.definition.json_schema import workflow_json_schema
from ruvon.errors import DefinitionError
from ruvon.serialization import jsonable
from ruvon.settings import persistence_from_url
from ruvon_cli._context import EXIT_ERROR, EXIT_USAGE, fail, json_argument, print_json, run
from ruvon_cli._definition_files import say, target_of
from ruvon_cli.validate_cmd import validate

__all__ = ["register"]

MAX_CALLS = 10_000
"""``run`` gives up after this many ``next_step`` calls (a loop that never ends)."""


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("validate")(validate)
    app.command("run")(run_file)
    app.command("schema")(schema)


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
        say(f"{noun} {where}{step_name}{suffix}: {status}")
        if more.get("result"):
            say(f"  Result: {_compact(more['result'])}")
        if more.get("error"):
            say(f"  Error: {more['error']}")

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
        target = target_of(file)
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
        say(f"Workflow ID: {workflow.id} ({workflow_type}, in memory)")
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
        say(f"Status: {status.value}")
        if waiting:
            say(_wait_message(workflow, workflow_type, printer))
        say("Final state:" if status.is_terminal else "State:")
        say(json.dumps(_state(workflow), indent=2, ensure_ascii=False, default=str))
        if status is WorkflowStatus.COMPLETED:
            say(f"Successfully completed workflow {workflow.id}")
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
        say(f"Wrote the JSON Schema of workflow files to {output}")

    run(work)
