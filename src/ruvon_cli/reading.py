"""``ruvon list|show|logs|metrics``: read stored workflow runs, their logs and metrics, one SDK
call each (of CLI-07..15).

These commands do not read the registry: a run is loaded from the definition snapshot stored
with it. They are registered by :func:`ruvon_cli.workflows.register`, among the commands that
drive runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord
from ruvon_cli._context import EXIT_NOT_FOUND, EXIT_USAGE, fail, print_json, run
from ruvon_cli._workflow_session import (
    EMPTY_REGISTRY,
    Db,
    JsonFlag,
    WorkflowId,
    load_workflow,
    session,
    wants_json,
)
from ruvon_cli._workflow_views import (
    metric_summary,
    print_logs,
    print_metric_summary,
    print_metrics,
    print_records,
    print_run,
    say,
    step_lines,
)

__all__ = ["list_workflows", "logs", "metrics", "show"]

_RECORD_INTERNALS = frozenset(
    {"definition_snapshot", "idempotency_hash", "lease_owner", "lease_expires_at", "commit_token"}
)
"""Columns of a stored record that ``list --json`` leaves out (engine bookkeeping)."""


async def _store(builder: WorkflowBuilder) -> PersistenceProvider:
    """The builder's store, opened: for the audit, log and metric reads."""
    store = builder.persistence_provider
    if store is None:  # open_builder always gives one
        fail("No database configured.")
    await store.initialize()
    return store


async def _require(store: PersistenceProvider, workflow_id: str) -> None:
    if await store.load_workflow(workflow_id) is None:
        fail(f"Workflow not found: {workflow_id}", EXIT_NOT_FOUND)


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
        as_json = wants_json(json_output)
        async with session(db, EMPTY_REGISTRY) as builder:
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
        as_json = wants_json(json_output)
        async with session(db, EMPTY_REGISTRY) as builder:
            workflow = await load_workflow(builder, workflow_id, validate_state=False)
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
        as_json = wants_json(json_output)
        async with session(db, EMPTY_REGISTRY) as builder:
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
        as_json = wants_json(json_output)
        async with session(db, EMPTY_REGISTRY) as builder:
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
