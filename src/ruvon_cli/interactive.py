"""``ruvon interactive run``: start a workflow and run it in the terminal, asking at each human
step for every field of its input (of CLI-07..15).

It reads the definitions (a step may start a sub-workflow by type). The ``interactive`` group
is registered by :func:`ruvon_cli.workflows.register`, after the commands on workflow runs.
"""

from __future__ import annotations

from typing import Annotated

import click
import typer

from ruvon import InvalidInputError
from ruvon_cli._context import fail, json_argument, run
from ruvon_cli._prompts import ask_fields, ask_json
from ruvon_cli._workflow_session import (
    ConfigFile,
    Data,
    DataFile,
    Db,
    drive,
    go_on,
    registry_for,
    session,
    start_workflow,
)
from ruvon_cli._workflow_views import print_outcome, print_state, say

__all__ = ["interactive_app"]

interactive_app = typer.Typer(
    help="Run a workflow in the terminal, answering its human steps at prompts.",
    no_args_is_help=True,
)


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
        async with session(db, registry_for(workflow_type, config)) as builder:
            workflow = await start_workflow(builder, workflow_type, initial)
            say(f"Workflow started: {workflow.id}")
            while True:
                await go_on(workflow, True)
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
                    await drive(workflow.next_step(user_input))
                except InvalidInputError as exc:
                    say(f"{exc}. Try again.")
            print_outcome(workflow, f"Workflow: {workflow.id}")
            print_state(workflow)

    run(work)
