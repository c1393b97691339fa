"""How the workflow commands print for people: runs, their steps, logs and metrics (tables
through rich, lines without markup). JSON output is ``_context.print_json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ruvon import Workflow, WorkflowStatus
from ruvon.progress import StepStatus
from ruvon.providers.persistence import LogEntry, MetricPoint, WorkflowRecord
from ruvon_cli._context import console
from ruvon_cli._prompts import describe

__all__ = [
    "metric_summary",
    "print_logs",
    "print_metric_summary",
    "print_metrics",
    "print_outcome",
    "print_records",
    "print_run",
    "print_state",
    "say",
    "step_lines",
]

_unwrapped = Console(highlight=False, width=10_000)
"""Tables for pipes and files: one line per row (non-expanding tables take their own width)."""

_MARKS = {
    StepStatus.COMPLETED.value: "✅",
    StepStatus.FAILED.value: "❌",
    StepStatus.SKIPPED.value: "⏭",
    StepStatus.RUNNING.value: "⏳",
    StepStatus.DISPATCHED.value: "⏳",
}


def say(text: str) -> None:
    """One line of human output, as it is (no markup; long lines are not wrapped)."""
    console.print(text, markup=False, soft_wrap=True)


def _print_table(table: Table) -> None:
    """A table at the terminal's width; piped or redirected, at its natural width (rich would
    squeeze it into 80 columns)."""
    (console if console.is_terminal else _unwrapped).print(table)


def _when(value: datetime | None) -> str:
    """A time in UTC, to the second."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _print_pairs(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        say(f"{name + ':':<{width}} {value}")


def print_records(records: Sequence[WorkflowRecord], total: int) -> None:
    """``ruvon list``: one row per run, and the total."""
    table = Table(show_edge=False)
    table.add_column("ID", no_wrap=True, min_width=36)
    for name in ("Type", "Status", "Current Step", "Created", "Updated"):
        table.add_column(name)
    for record in records:
        table.add_row(
            Text(record.id),
            Text(record.workflow_type),
            Text(record.status),
            Text(record.current_step or "-"),
            _when(record.created_at),
            _when(record.updated_at),
        )
    _print_table(table)
    shown = "" if total <= len(records) else f" (showing the newest {len(records)})"
    say(f"Total: {total} workflow(s){shown}")


def print_outcome(workflow: Workflow, headline: str) -> None:
    """Where a run stands after a command drove it, and what to do next."""
    say(headline)
    _print_pairs(
        [("Status", workflow.status.value), ("Current Step", workflow.current_step_name or "-")]
    )
    status = workflow.status
    if status.is_waiting:
        schema = workflow.input_schema()
        if schema is not None:
            say(f"Input: {describe(schema)}")
        say(f"Next: ruvon resume {workflow.id} --input '<JSON>'")
    elif status is WorkflowStatus.ACTIVE:
        say(f"Next: ruvon resume {workflow.id} (runs {workflow.current_step_name}), or add --auto")
    elif status is WorkflowStatus.FAILED and workflow.error_message:
        say(f"Error: {workflow.error_message}")
        say(f"Next: ruvon retry {workflow.id}")


def step_lines(workflow: Workflow) -> list[dict[str, Any]]:
    """Each step with what happened to it (``Workflow.progress``) and whether it is current."""
    current = workflow.current_step_name
    return [
        {
            "name": step.name,
            "type": step.type.value,
            "status": workflow.progress.status_of(step.name).value,
            "current": step.name == current,
        }
        for step in workflow.steps
    ]


def _mark(line: dict[str, Any], status: WorkflowStatus) -> str:
    if line["current"] and line["status"] == StepStatus.PENDING.value:
        return "⏸" if status.is_waiting else "▶"
    return _MARKS.get(line["status"], "·")


def print_run(workflow: Workflow, *, with_state: bool) -> None:
    """``ruvon show``: the overview, the steps and, if asked, the state."""
    version = f" (version {workflow.workflow_version})" if workflow.workflow_version else ""
    pairs: list[tuple[str, Any]] = [
        ("Workflow", workflow.id),
        ("Type", f"{workflow.workflow_type}{version}"),
        ("Status", workflow.status.value),
        ("Current Step", workflow.current_step_name or "-"),
        ("Created", _when(workflow.created_at)),
        ("Updated", _when(workflow.updated_at)),
        ("Completed", _when(workflow.completed_at)),
    ]
    if workflow.error_message:
        pairs.append(("Error", workflow.error_message))
    _print_pairs(pairs)
    say("Steps:")
    for line in step_lines(workflow):
        say(f"  {_mark(line, workflow.status)} {line['name']} ({line['status']})")
    if with_state:
        print_state(workflow)


def print_state(workflow: Workflow) -> None:
    say("State:")
    say(json.dumps(workflow.to_dict()["state"], indent=2, ensure_ascii=False))


def print_logs(entries: Sequence[LogEntry]) -> None:
    """Execution log lines: Time, Level, Step, Message."""
    if not entries:
        say("No logs found")
        return
    table = Table(show_edge=False)
    for name in ("Time", "Level", "Step", "Message"):
        table.add_column(name)
    for entry in entries:
        table.add_row(
            _when(entry.logged_at), entry.level, Text(entry.step_name or "-"), Text(entry.message)
        )
    _print_table(table)


def print_metrics(points: Sequence[MetricPoint]) -> None:
    """Metric points: Time, Workflow, Step, Metric, Value, Unit."""
    if not points:
        say("No metrics found")
        return
    table = Table(show_edge=False)
    table.add_column("Time")
    table.add_column("Workflow", no_wrap=True)
    for name in ("Step", "Metric", "Value", "Unit"):
        table.add_column(name)
    for point in points:
        table.add_row(
            _when(point.recorded_at),
            Text(point.workflow_id or "-"),
            Text(point.step_name or "-"),
            Text(point.metric_name),
            f"{point.metric_value:g}",
            Text(point.unit or ""),
        )
    _print_table(table)


def metric_summary(points: Sequence[MetricPoint]) -> dict[str, Any]:
    """Totals of the points shown: how many, of how many steps and runs, and per metric its
    count, min, max, mean and unit."""
    by_name: dict[str, list[MetricPoint]] = {}
    for point in points:
        by_name.setdefault(point.metric_name, []).append(point)
    return {
        "total_metrics": len(points),
        "unique_steps": len({p.step_name for p in points if p.step_name}),
        "workflows": len({p.workflow_id for p in points if p.workflow_id}),
        "metrics": {
            name: {
                "count": len(group),
                "min": min(p.metric_value for p in group),
                "max": max(p.metric_value for p in group),
                "avg": sum(p.metric_value for p in group) / len(group),
                "unit": group[0].unit,
            }
            for name, group in sorted(by_name.items())
        },
    }


def print_metric_summary(totals: dict[str, Any]) -> None:
    """:func:`metric_summary` for people."""
    _print_pairs(
        [
            ("Total metrics", totals["total_metrics"]),
            ("Unique steps", totals["unique_steps"]),
            ("Workflows", totals["workflows"]),
        ]
    )
    if not totals["metrics"]:
        return
    table = Table(show_edge=False)
    for name in ("Metric", "Count", "Min", "Avg", "Max", "Unit"):
        table.add_column(name)
    for name, row in totals["metrics"].items():
        table.add_row(
            Text(name),
            str(row["count"]),
            f"{row['min']:g}",
            f"{row['avg']:.4g}",
            f"{row['max']:g}",
            Text(row["unit"] or ""),
        )
    _print_table(table)
