"""``ruvon list|start|show|resume|retry|cancel|logs|metrics`` and ``ruvon interactive run``:
workflow runs, one SDK call each (CLI-07..15).

Commands that only read stored runs (and ``cancel``) do not read the registry: a run is loaded
from the definition snapshot stored with it. ``start``, ``resume``, ``retry`` and
``interactive run`` read the definitions (a step may start a sub-workflow by type).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer

from ruvon import (
    InvalidInputError,
    JumpTargetError,
    UnknownWorkflowTypeError,
    Workflow,
    WorkflowBuilder,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord
from ruvon_cli import settings
from ruvon_cli._context import (
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    fail,
    json_argument,
    open_builder,
    print_json,
    run,
)
from ruvon_cli._prompts import ask_fields, ask_json
from ruvon_cli._workflow_views import (
    metric_summary,
    print_logs,
    print_metric_summary,
    print_metrics,
    print_outcome,
    print_records,
    print_run,
    print_state,
    say,
    step_lines,
)

__all__ = ["register"]

T = TypeVar("T")

interactive_app = typer.Typer(
    help="Run a workflow in the terminal, answering its human steps at prompts.",
    no_args_is_help=True,
)

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL or SQLite file (default: RUVON_DATABASE_URL, the config file, "
        "./ruvon.db).",
    ),
]
JsonFlag = Annotated[
    bool | None,
    typer.Option("--json/--no-json", help="Print JSON only (default: config json_output)."),
]
Auto = Annotated[
    bool | None,
    typer.Option(
        "--auto/--no-auto",
        help="Keep running steps until the run is no longer ACTIVE (default: config auto_execute).",
    ),
]
WorkflowId = Annotated[str, typer.Argument(metavar="WORKFLOW_ID", help="The workflow's id.")]
Data = Annotated[
    str | None,
    typer.Option("--data", "-d", metavar="JSON", help="The initial state as a JSON object."),
]
DataFile = Annotated[
    Path | None,
    typer.Option("--data-file", metavar="PATH", help="A file holding the initial state as JSON."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="A workflow YAML file to use instead of the registry (it names its "
        "initial_state_model).",
    ),
]

_EMPTY_REGISTRY: dict[str, Any] = {}
"""The registry of commands that only load stored runs (they run from their snapshots)."""
_RECORD_INTERNALS = frozenset(
    {"definition_snapshot", "idempotency_hash", "lease_owner", "lease_expires_at", "commit_token"}
)
"""Columns of a stored record that ``list --json`` leaves out (engine bookkeeping)."""


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("list")(list_workflows)
    app.command("start")(start)
    app.command("show")(show)
    app.command("resume")(resume)
    app.command("retry")(retry)
    app.command("cancel")(cancel)
    app.command("logs")(logs)
    app.command("metrics")(metrics)
    app.add_typer(interactive_app, name="interactive")


# -- shared ------------------------------------------------------------------------------


@asynccontextmanager
async def _session(db: str | None, registry: Any = None) -> AsyncIterator[WorkflowBuilder]:
    """A builder on the command's database, closed (with its store) at the end."""
    builder = open_builder(db, registry=registry)
    try:
        yield builder
    finally:
        await builder.close()
        store = builder.persistence_provider
        if store is not None:  # opened by _store() when no builder call did
            await store.close()


async def _store(builder: WorkflowBuilder) -> PersistenceProvider:
    """The builder's store, opened: for the audit, log and metric reads."""
    store = builder.persistence_provider
    if store is None:  # open_builder always gives one
        fail("No database configured.")
    await store.initialize()
    return store


async def _load(builder: WorkflowBuilder, workflow_id: str, **options: Any) -> Workflow:
    try:
        return await builder.load_workflow(workflow_id, **options)
    except WorkflowNotFoundError:
        fail(f"Workflow not found: {workflow_id}", EXIT_NOT_FOUND)


async def _require(store: PersistenceProvider, workflow_id: str) -> None:
    if await store.load_workflow(workflow_id) is None:
        fail(f"Workflow not found: {workflow_id}", EXIT_NOT_FOUND)


async def _drive(call: Awaitable[T]) -> T:
    """Await a call that runs steps; a failing step becomes one line naming the run."""
    try:
        return await call
    except Exception as exc:
        status = getattr(exc, "workflow_status", None)
        lost = getattr(exc, "commit_error", None)
        if status is None and lost is None:
            raise  # not a step's failure: run() reports it
        workflow_id = getattr(exc, "workflow_id", None) or "?"
        step = getattr(exc, "step_name", None) or "?"
        message = f"Step '{step}' failed: {type(exc).__name__}: {exc}"
        if lost is not None:
            fail(f"{message} (recording the failure failed too: {lost})")
        hint = f" Fix the cause, then: ruvon retry {workflow_id}" if status == "FAILED" else ""
        fail(f"Workflow {workflow_id} is {status}. {message}.{hint}")


def _json_output(flag: bool | None) -> bool:
    return bool(settings.load().default("json_output")) if flag is None else flag


def _auto(flag: bool | None) -> bool:
    return bool(settings.load().default("auto_execute")) if flag is None else flag


async def _go_on(workflow: Workflow, auto: bool) -> None:
    """With ``--auto``, run steps until the workflow is no longer ACTIVE."""
    if auto and workflow.status is WorkflowStatus.ACTIVE:
        await _drive(workflow.run())


def _record_json(record: WorkflowRecord) -> dict[str, Any]:
    return {k: v for k, v in record.to_dict().items() if k not in _RECORD_INTERNALS}


def _status_filter(status: str | None) -> str | None:
    if status is None:
        return None
    try:
        return WorkflowStatus(status.upper()).value
    except ValueError:
        known = ", ".join(
            s.value for s in WorkflowStatus if s is not WorkflowStatus.WAITING_HUMAN_INPUT
        )
        fail(f"Unknown status '{status}'; use one of {known}.", EXIT_USAGE)


async def _start(builder: WorkflowBuilder, workflow_type: str, data: dict[str, Any]) -> Workflow:
    try:
        return await _drive(builder.start_workflow(workflow_type, data))
    except UnknownWorkflowTypeError as exc:
        known = ", ".join(builder.list_workflow_types()) or "none registered"
        fail(f"{exc} Known types: {known}.")


def _registry_for(workflow_type: str, config: Path | None) -> Any:
    """``--config FILE``: a one-entry registry naming the file (which holds the rest)."""
    if config is None:
        return None
    if not config.is_file():
        fail(f"Workflow file not found: {config}", EXIT_USAGE)
    return {workflow_type: {"type": workflow_type, "config_file": str(config.resolve())}}


# -- list ----------------------------------------------------------------------------------


def list_workflows(
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", metavar="STATUS", help="Only runs in this status."),
    ] = None,
    workflow_type: Annotated[
        str | None,
        typer.Option("--type", "-t", metavar="TYPE", help="Only runs of this workflow type."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, metavar="N", help="At most this many.")
    ] = 20,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """List workflow runs, newest first.

    Example: ruvon list --status WAITING_HUMAN
    """

    async def work() -> None:
        wanted = _status_filter(status)
        as_json = _json_output(json_output)
        async with _session(db, _EMPTY_REGISTRY) as builder:
            records = await builder.list_workflows(
                status=wanted, workflow_type=workflow_type, limit=limit
            )
            if as_json:
                print_json([_record_json(record) for record in records])
                return
            if not records:
                say("No workflows found")
                return
            total = await builder.count_workflows(status=wanted, workflow_type=workflow_type)
        print_records(records, total)

    run(work)


# -- start ---------------------------------------------------------------------------------


def start(
    workflow_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="The workflow type to start.")
    ],
    data: Data = None,
    data_file: DataFile = None,
    config: ConfigFile = None,
    auto: Auto = None,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Start a workflow: create it and run its first step (and the steps chained to it).

    The type comes from ./config/workflow_registry.yaml (or RUVON_CONFIG_DIR), or from the
    workflow file given with --config.

    Example: ruvon start OrderApproval --data '{"order_id": "A-1", "customer": "ACME", "items": []}'
    """

    async def work() -> None:
        initial = json_argument(data, data_file, "--data")
        as_json = _json_output(json_output)
        async with _session(db, _registry_for(workflow_type, config)) as builder:
            workflow = await _start(builder, workflow_type, initial)
            await _go_on(workflow, _auto(auto))
            if as_json:
                print_json(workflow.to_dict())
            else:
                print_outcome(workflow, f"Workflow started: {workflow.id}")

    run(work)


# -- show ----------------------------------------------------------------------------------


def show(
    workflow_id: WorkflowId,
    state: Annotated[bool, typer.Option("--state", help="Show the state.")] = False,
    with_logs: Annotated[bool, typer.Option("--logs", help="Show the execution logs.")] = False,
    with_metrics: Annotated[bool, typer.Option("--metrics", help="Show the metrics.")] = False,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Show one workflow run: its status, steps and, on request, state, logs and metrics.

    Example: ruvon show <id> --state --logs
    """

    async def work() -> None:
        as_json = _json_output(json_output)
        async with _session(db, _EMPTY_REGISTRY) as builder:
            workflow = await _load(builder, workflow_id, validate_state=False)
            store = workflow.persistence
            entries = await store.get_execution_logs(workflow_id) if with_logs else None
            points = (
                await store.get_workflow_metrics(workflow_id=workflow_id) if with_metrics else None
            )
        if as_json:
            document = {**workflow.to_dict(), "steps": step_lines(workflow)}
            if entries is not None:
                document["logs"] = entries
            if points is not None:
                document["metrics"] = points
            print_json(document)
            return
        print_run(workflow, with_state=state)
        if entries is not None:
            print_logs(entries)
        if points is not None:
            print_metrics(points)

    run(work)


# -- resume, retry, cancel -------------------------------------------------------------


def resume(
    workflow_id: WorkflowId,
    input_text: Annotated[
        str | None,
        typer.Option("--input", "-i", metavar="JSON", help="The step's input as a JSON object."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input-file", metavar="PATH", help="A file holding the input as JSON."),
    ] = None,
    auto: Auto = None,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Resume a waiting (or ACTIVE) workflow: run its current step with the input.

    Invalid input (the step's input_model) is refused and changes nothing.

    Example: ruvon resume <id> --input '{"approved": true, "approver": "ann"}'
    """

    async def work() -> None:
        user_input = json_argument(input_text, input_file, "--input")
        as_json = _json_output(json_output)
        async with _session(db) as builder:
            workflow = await _load(builder, workflow_id)
            await _drive(workflow.next_step(user_input))
            await _go_on(workflow, _auto(auto))
            if as_json:
                print_json(workflow.to_dict())
            else:
                print_outcome(workflow, f"Workflow resumed: {workflow.id}")

    run(work)


def retry(
    workflow_id: WorkflowId,
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from-step",
            metavar="STEP",
            help="Run again from this step (default: the failed one).",
        ),
    ] = None,
    auto: Auto = None,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Make a failed workflow ACTIVE again at the failed step or at --from-step; with --auto,
    run it on until it is no longer ACTIVE.

    Example: ruvon retry <id> --from-step Validate_Order --auto
    """

    async def work() -> None:
        as_json = _json_output(json_output)
        async with _session(db) as builder:
            workflow = await _load(builder, workflow_id)
            try:
                await workflow.retry(from_step)
            except JumpTargetError:
                available = ", ".join(step.name for step in workflow.steps)
                fail(f"Unknown step '{from_step}'. Available steps: {available}")
            await _go_on(workflow, _auto(auto))
            if as_json:
                print_json(workflow.to_dict())
            else:
                print_outcome(workflow, f"Workflow retried: {workflow.id}")

    run(work)


def cancel(
    workflow_id: WorkflowId,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why (stored).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")
    ] = False,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Cancel a workflow that has not ended (no compensation runs).

    Asks for confirmation unless --force; without a terminal, --force is required.

    Example: ruvon cancel <id> --reason "duplicate order" --force
    """

    async def work() -> None:
        as_json = _json_output(json_output)
        async with _session(db, _EMPTY_REGISTRY) as builder:
            workflow = await _load(builder, workflow_id, validate_state=False)
            # An ended run is refused by cancel() itself: no question to ask first.
            if not force and not workflow.status.is_terminal:
                if not sys.stdin.isatty():
                    fail("Not cancelled: stdin is not a terminal; pass --force.", EXIT_USAGE)
                question = (
                    f"Cancel workflow {workflow.id} ({workflow.workflow_type}, "
                    f"{workflow.status.value})?"
                )
                if not typer.confirm(question):
                    fail("Not cancelled.")
            await workflow.cancel(reason)
        if as_json:
            print_json(workflow.to_dict())
            return
        say(f"Workflow cancelled: {workflow.id}")
        if reason:
            say(f"Reason: {reason}")

    run(work)


# -- logs and metrics --------------------------------------------------------------------


def logs(
    workflow_id: WorkflowId,
    step: Annotated[
        str | None, typer.Option("--step", metavar="STEP", help="Only this step's lines.")
    ] = None,
    level: Annotated[
        str | None,
        typer.Option("--level", metavar="LEVEL", help="Only this level (INFO, WARNING, ERROR...)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, metavar="N", help="At most this many.")
    ] = 50,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Show a workflow's execution logs, oldest first.

    Example: ruvon logs <id> --level ERROR
    """

    async def work() -> None:
        as_json = _json_output(json_output)
        async with _session(db, _EMPTY_REGISTRY) as builder:
            store = await _store(builder)
            await _require(store, workflow_id)
            entries = await store.get_execution_logs(
                workflow_id,
                step_name=step,
                level=level.upper() if level else None,
                limit=limit,
            )
        if as_json:
            print_json(entries)
        else:
            print_logs(entries)

    run(work)


def metrics(
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow-id", "-w", metavar="WORKFLOW_ID", help="Only this run's metrics."),
    ] = None,
    workflow_type: Annotated[
        str | None,
        typer.Option("--type", "-t", metavar="TYPE", help="Only runs of this workflow type."),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Totals per metric instead of each point.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, metavar="N", help="At most this many.")
    ] = 100,
    json_output: JsonFlag = None,
    db: Db = None,
) -> None:
    """Show recorded metrics (step durations and your own), oldest first.

    Example: ruvon metrics --type OrderApproval --summary
    """

    async def work() -> None:
        as_json = _json_output(json_output)
        async with _session(db, _EMPTY_REGISTRY) as builder:
            store = await _store(builder)
            if workflow_id is not None:
                await _require(store, workflow_id)
            points = await store.get_workflow_metrics(
                workflow_id=workflow_id, workflow_type=workflow_type, limit=limit
            )
        if not summary:
            if as_json:
                print_json(points)
            else:
                print_metrics(points)
            return
        totals = metric_summary(points)
        if as_json:
            print_json(totals)
        else:
            print_metric_summary(totals)

    run(work)


# -- interactive -------------------------------------------------------------------------


@interactive_app.command("run")
def interactive_run(
    workflow_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="The workflow type to start.")
    ],
    data: Data = None,
    data_file: DataFile = None,
    config: ConfigFile = None,
    db: Db = None,
) -> None:
    """Start a workflow and run it in the terminal: automatic steps run on their own, and at
    each human step you are asked for every field of its input.

    Example: ruvon interactive run OrderApproval --data-file order.json
    """

    async def work() -> None:
        initial = json_argument(data, data_file, "--data")
        async with _session(db, _registry_for(workflow_type, config)) as builder:
            workflow = await _start(builder, workflow_type, initial)
            say(f"Workflow started: {workflow.id}")
            while True:
                await _go_on(workflow, True)
                if not workflow.status.is_waiting:
                    break
                step = workflow.current_step_name
                say(f"Step {step} waits for input.")
                schema = workflow.input_schema()
                try:
                    user_input = ask_fields(schema) if schema is not None else ask_json(step)
                except (typer.Abort, click.exceptions.Abort):  # stdin ended
                    fail(f"No more input; workflow {workflow.id} still waits at {step}.")
                try:
                    await _drive(workflow.next_step(user_input))
                except InvalidInputError as exc:
                    say(f"{exc}. Try again.")
            print_outcome(workflow, f"Workflow: {workflow.id}")
            print_state(workflow)

    run(work)
