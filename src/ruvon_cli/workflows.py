"""``ruvon start|resume|retry|cancel``: drive workflow runs, one SDK call each (of CLI-07..15).

``start``, ``resume`` and ``retry`` read the definitions (a step may start a sub-workflow by
type); ``cancel`` does not: the run is loaded from the definition snapshot stored with it.

:func:`register` also adds the commands that read runs (:mod:`ruvon_cli.reading`: ``list``,
``show``, ``logs``, ``metrics``) and ``interactive run`` (:mod:`ruvon_cli.interactive`), so
that ``ruvon --help`` lists them in the order of a run's life.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ruvon import JumpTargetError, Workflow
from ruvon_cli import settings
from ruvon_cli._context import EXIT_USAGE, fail, json_argument, print_json, run
from ruvon_cli._workflow_session import (
    EMPTY_REGISTRY,
    ConfigFile,
    Data,
    DataFile,
    Db,
    JsonFlag,
    WorkflowId,
    drive,
    go_on,
    load_workflow,
    registry_for,
    session,
    start_workflow,
    wants_json,
)
from ruvon_cli._workflow_views import print_outcome, say
from ruvon_cli.interactive import interactive_app
from ruvon_cli.reading import list_workflows, logs, metrics, show

__all__ = ["register"]

Auto = Annotated[
    bool | None,
    typer.Option(
        "--auto/--no-auto",
        help="Keep running steps until the run is no longer ACTIVE (default: config auto_execute).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the commands on workflow runs to ``app`` (those of ``reading`` and ``interactive``
    too)."""
    app.command("list")(list_workflows)
    app.command("start")(start)
    app.command("show")(show)
    app.command("resume")(resume)
    app.command("retry")(retry)
    app.command("cancel")(cancel)
    app.command("logs")(logs)
    app.command("metrics")(metrics)
    app.add_typer(interactive_app, name="interactive")


def _auto(flag: bool | None) -> bool:
    return bool(settings.load().default("auto_execute")) if flag is None else flag


async def _finish(workflow: Workflow, auto: bool | None, as_json: bool, verb: str) -> None:
    """Go on with ``--auto``, then print the run (JSON, or its outcome with hints)."""
    await go_on(workflow, _auto(auto))
    if as_json:
        print_json(workflow.to_dict())
    else:
        print_outcome(workflow, f"Workflow {verb}: {workflow.id}")


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
        as_json = wants_json(json_output)
        async with session(db, registry_for(workflow_type, config)) as builder:
            workflow = await start_workflow(builder, workflow_type, initial)
            await _finish(workflow, auto, as_json, "started")

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
        as_json = wants_json(json_output)
        async with session(db) as builder:
            workflow = await load_workflow(builder, workflow_id)
            await drive(workflow.next_step(user_input))
            await _finish(workflow, auto, as_json, "resumed")

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
        as_json = wants_json(json_output)
        async with session(db) as builder:
            workflow = await load_workflow(builder, workflow_id)
            try:
                await workflow.retry(from_step)
            except JumpTargetError:
                available = ", ".join(step.name for step in workflow.steps)
                fail(f"Unknown step '{from_step}'. Available steps: {available}")
            await _finish(workflow, auto, as_json, "retried")

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
        as_json = wants_json(json_output)
        async with session(db, EMPTY_REGISTRY) as builder:
            workflow = await load_workflow(builder, workflow_id, validate_state=False)
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
