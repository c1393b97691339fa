"""What the workflow-run commands (``workflows``, ``reading``, ``interactive``) share: their
options, a builder on the command's database, loading a run, starting one, and running steps
with a failing step reported as one line naming the run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ruvon import (
    UnknownWorkflowTypeError,
    Workflow,
    WorkflowBuilder,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from ruvon_cli import settings
from ruvon_cli._context import EXIT_NOT_FOUND, EXIT_USAGE, console, fail, open_builder

__all__ = [
    "EMPTY_REGISTRY",
    "ConfigFile",
    "Data",
    "DataFile",
    "Db",
    "JsonFlag",
    "WorkflowId",
    "drive",
    "go_on",
    "load_workflow",
    "registry_for",
    "session",
    "start_workflow",
    "wants_json",
]

T = TypeVar("T")

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

EMPTY_REGISTRY: dict[str, Any] = {}
"""The registry of commands that only load stored runs (they run from their snapshots)."""


@asynccontextmanager
async def session(db: str | None, registry: Any = None) -> AsyncIterator[WorkflowBuilder]:
    """A builder on the command's database, closed (with its store) at the end."""
    builder = open_builder(db, registry=registry)
    try:
        yield builder
    finally:
        await builder.close()
        store = builder.persistence_provider
        if store is not None:  # opened by reading._store() when no builder call did
            await store.close()


async def load_workflow(builder: WorkflowBuilder, workflow_id: str, **options: Any) -> Workflow:
    try:
        return await builder.load_workflow(workflow_id, **options)
    except WorkflowNotFoundError:
        fail(f"Workflow not found: {workflow_id}", EXIT_NOT_FOUND)


async def drive(call: Awaitable[T]) -> T:
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


def wants_json(flag: bool | None) -> bool:
    """``--json/--no-json``, else the config file's ``json_output``."""
    return bool(settings.load().default("json_output")) if flag is None else flag


async def go_on(workflow: Workflow, auto: bool) -> None:
    """With ``--auto``, run steps until the workflow is no longer ACTIVE; on a terminal a status
    line names the step running and counts the calls (a long workflow shows its progress)."""
    if not (auto and workflow.status is WorkflowStatus.ACTIVE):
        return
    if not console.is_terminal:
        await drive(workflow.run())
        return
    calls = 0
    with console.status("") as line:
        while workflow.status is WorkflowStatus.ACTIVE and calls < 100_000:
            calls += 1
            line.update(f"Running {workflow.current_step_name} (call {calls})...")
            await drive(workflow.next_step())


async def start_workflow(
    builder: WorkflowBuilder, workflow_type: str, data: dict[str, Any]
) -> Workflow:
    try:
        return await drive(builder.start_workflow(workflow_type, data))
    except UnknownWorkflowTypeError as exc:
        known = ", ".join(builder.list_workflow_types()) or "none registered"
        fail(f"{exc} Known types: {known}.")


def registry_for(workflow_type: str, config: Path | None) -> Any:
    """``--config FILE``: a one-entry registry naming the file (which holds the rest)."""
    if config is None:
        return None
    if not config.is_file():
        fail(f"Workflow file not found: {config}", EXIT_USAGE)
    return {workflow_type: {"type": workflow_type, "config_file": str(config.resolve())}}
