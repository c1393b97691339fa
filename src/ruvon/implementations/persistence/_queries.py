"""The filtered reads of the SQL providers: SELECTs assembled from optional filters.

Like the fixed statements of ``_sql``, they are written in PostgreSQL syntax (``$n``
parameters, numbered as filters are added) and rendered with ``Dialect.sql``. Each function
returns ``(text, args)``; the rows are read by ``_rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ruvon.implementations.persistence._columns import SELECT_WORKFLOW
from ruvon.implementations.persistence._sql import (
    AUDIT_COLUMNS,
    LOG_COLUMNS,
    METRIC_COLUMNS,
    Dialect,
)
from ruvon.models import statuses_matching
from ruvon.providers.persistence import check_aware, check_page
from ruvon.providers.step_log import STEP_LOG_EVENTS

__all__ = [
    "Query",
    "WorkflowFilters",
    "audit_query",
    "count_workflows_query",
    "list_workflows_query",
    "logs_query",
    "metrics_query",
    "status_values",
    "step_log_audit_query",
]


def status_values(status: str | Sequence[str] | None) -> list[str] | None:
    """The stored status strings a status filter matches, sorted; ``None`` for no filter."""
    wanted = statuses_matching(status)
    return None if wanted is None else sorted(wanted)


class Query:
    """A SELECT assembled from optional filters, with ``$n`` parameters numbered as added."""

    def __init__(self, select: str) -> None:
        self._select = select
        self._where: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """Add a parameter; return its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    def equals(self, column: str, value: Any) -> Query:
        """Filter on ``column = value`` unless ``value`` is None."""
        if value is not None:
            self._where.append(f"{column} = {self.arg(value)}")
        return self

    def one_of(self, column: str, values: Sequence[Any] | None) -> Query:
        """Filter on ``column IN values`` unless ``values`` is None (empty matches nothing)."""
        if values is not None:
            if values:
                self._where.append(f"{column} IN ({', '.join(self.arg(v) for v in values)})")
            else:
                self._where.append("1 = 0")
        return self

    def compare(self, column: str, operator: str, value: Any, cast: str = "") -> Query:
        """Filter on ``column <operator> value`` unless ``value`` is None; ``cast`` (e.g.
        ``::timestamptz``) follows the parameter."""
        if value is not None:
            self._where.append(f"{column} {operator} {self.arg(value)}{cast}")
        return self

    def _where_clause(self) -> str:
        return f" WHERE {' AND '.join(self._where)}" if self._where else ""

    def text(self, order_by: str, limit: int, offset: int = 0) -> str:
        """The statement in PostgreSQL syntax; render it with ``Dialect.sql``."""
        page = f" LIMIT {self.arg(max(limit, 0))}"
        if offset:
            page += f" OFFSET {self.arg(max(offset, 0))}"
        return f"{self._select}{self._where_clause()} ORDER BY {order_by}{page}"

    def count_text(self) -> str:
        """The statement without order or page (for a ``SELECT count(*)``)."""
        return f"{self._select}{self._where_clause()}"


@dataclass(frozen=True, slots=True)
class WorkflowFilters:
    """The filters of ``list_workflows`` and ``count_workflows``, checked (see the Protocol)."""

    status: str | Sequence[str] | None = None
    workflow_type: str | None = None
    parent_workflow_id: str | None = None
    owner_id: str | None = None
    org_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        check_aware("created_after", self.created_after)
        check_aware("created_before", self.created_before)

    def query(self, select: str, time_out: Callable[[datetime | None], Any]) -> Query:
        """``select`` filtered; times are bound through the dialect's ``time_out``."""
        return (
            Query(select)
            .one_of("status", status_values(self.status))
            .equals("workflow_type", self.workflow_type)
            .equals("parent_execution_id", self.parent_workflow_id)
            .equals("owner_id", self.owner_id)
            .equals("org_id", self.org_id)
            .compare("created_at", ">=", time_out(self.created_after), "::timestamptz")
            .compare("created_at", "<", time_out(self.created_before), "::timestamptz")
        )


def list_workflows_query(
    filters: WorkflowFilters, dialect: Dialect, *, limit: int, offset: int
) -> tuple[str, list[Any]]:
    """``list_workflows`` as (PostgreSQL-syntax text, args): newest first, insertion order
    breaking ties of ``created_at``. Raises ``ValueError`` for a negative limit or offset."""
    check_page(limit, offset)
    query = filters.query(SELECT_WORKFLOW, dialect.time_out)
    return query.text("created_at DESC, seq DESC", limit, offset), query.args


def count_workflows_query(filters: WorkflowFilters, dialect: Dialect) -> tuple[str, list[Any]]:
    """``count_workflows`` as (PostgreSQL-syntax text, args)."""
    query = filters.query("SELECT count(*) FROM workflow_executions", dialect.time_out)
    return query.count_text(), query.args


def audit_query(workflow_id: str, event_type: str | None, limit: int) -> tuple[str, list[Any]]:
    """``get_audit_log`` as (PostgreSQL-syntax text, args), in the order written."""
    query = Query(
        f"SELECT id, workflow_id, {', '.join(AUDIT_COLUMNS)}, timestamp FROM workflow_audit_log"
    )
    query.equals("workflow_id", workflow_id).equals("event_type", event_type)
    return query.text("id", limit), query.args


def logs_query(
    workflow_id: str, step_name: str | None, level: str | None, limit: int
) -> tuple[str, list[Any]]:
    """``get_execution_logs`` as (PostgreSQL-syntax text, args); ``level`` is case-blind."""
    query = Query(
        f"SELECT id, workflow_id, {', '.join(LOG_COLUMNS)}, logged_at FROM workflow_execution_logs"
    )
    query.equals("workflow_id", workflow_id).equals("step_name", step_name)
    query.equals("log_level", None if level is None else level.upper())
    return query.text("id", limit), query.args


def step_log_audit_query(
    workflow_id: str, step_name: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The audit entries the per-step lines of ``get_execution_logs`` are read from
    (:data:`~ruvon.providers.step_log.STEP_LOG_EVENTS`), as (PostgreSQL-syntax text, args)."""
    query = Query(
        f"SELECT id, workflow_id, {', '.join(AUDIT_COLUMNS)}, timestamp FROM workflow_audit_log"
    )
    query.equals("workflow_id", workflow_id).equals("step_name", step_name)
    query.one_of("event_type", STEP_LOG_EVENTS)
    return query.text("id", limit), query.args


def metrics_query(
    workflow_id: str | None, workflow_type: str | None, metric_name: str | None, limit: int
) -> tuple[str, list[Any]]:
    """``get_workflow_metrics`` as (PostgreSQL-syntax text, args), in the order recorded."""
    query = Query(
        f"SELECT id, workflow_id, {', '.join(METRIC_COLUMNS)}, recorded_at FROM workflow_metrics"
    )
    query.equals("workflow_id", workflow_id).equals("workflow_type", workflow_type)
    query.equals("metric_name", metric_name)
    return query.text("id", limit), query.args
