"""PostgreSQL-only statement text: the one-statement commit and create, and the batch commit.

The shared statements of ``_sql`` and ``_columns`` become data-modifying CTEs here: a versioned
UPDATE (or the INSERT of a new row) whose RETURNING row feeds the inserts of its audit, metric
and log entries, passed as parallel arrays (``unnest``). The batch UPDATE is generated from the
column declaration of ``_columns``, like the single one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from ruvon.implementations.persistence import _sql
from ruvon.implementations.persistence._columns import (
    INSERT_WORKFLOW_PARAMS,
    LEASE_FREE,
    UPDATE_WORKFLOW,
    UPDATE_WORKFLOW_PARAMS,
    UPDATED_COLUMNS,
    Column,
    Kind,
    set_clause,
)
from ruvon.implementations.persistence._sql_leases import COMMIT_CHECK

__all__ = [
    "BATCH_CHECK",
    "all_columns",
    "batch_sql",
    "commit_sql",
    "create_sql",
    "value_columns",
]

_S = _sql.Statements.for_dialect(_sql.POSTGRES)

# -- the one-statement commit --------------------------------------------------------------

# Per entry kind: (CTE alias, insert target, (column, array element type, select expression)).
# The columns are those of _sql.*_COLUMNS in the same order: the unnest() arrays are the
# columns of the rows _rows.*_rows builds. {owner} is the CTE holding the workflow row.
_ENTRY_GROUPS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "a",
        _sql.AUDIT_INSERT,
        (
            ("event_type", "text", "e.event_type"),
            ("step_name", "text", "e.step_name"),
            ("old_status", "text", "e.old_status"),
            ("new_status", "text", "e.new_status"),
            ("event_data", "text", "e.event_data::jsonb"),
            ("user_id", "text", "e.user_id"),
            ("worker_id", "text", "e.worker_id"),
            ("execution_duration_ms", "float8", "e.execution_duration_ms"),
        ),
    ),
    (
        "m",
        _sql.METRIC_INSERT,
        (
            ("workflow_type", "text", "COALESCE(e.workflow_type, {owner}.workflow_type)"),
            ("step_name", "text", "e.step_name"),
            ("metric_name", "text", "e.metric_name"),
            ("metric_value", "float8", "e.metric_value"),
            ("unit", "text", "e.unit"),
            ("tags", "text", "e.tags::jsonb"),
        ),
    ),
    (
        "l",
        _sql.LOG_INSERT,
        (
            ("step_name", "text", "e.step_name"),
            ("log_level", "text", "e.log_level"),
            ("message", "text", "e.message"),
            ("metadata", "text", "e.metadata::jsonb"),
        ),
    ),
)


def _entry_ctes(owner: str, first_param: int, present: Sequence[bool]) -> tuple[list[str], int]:
    """CTEs inserting the entry arrays for the workflow row of CTE ``owner``."""
    ctes: list[str] = []
    param = first_param
    for (alias, target, columns), wanted in zip(_ENTRY_GROUPS, present, strict=True):
        if not wanted:
            continue
        arrays = []
        for _column, kind, _expr in columns:
            arrays.append(f"${param}::{kind}[]")
            param += 1
        names = ", ".join(column for column, _kind, _expr in columns)
        exprs = ", ".join(expr.format(owner=owner) for _column, _kind, expr in columns)
        ctes.append(
            f"{alias} AS (INSERT INTO {target} SELECT $1, {exprs}, now() "
            f"FROM {owner}, unnest({', '.join(arrays)}) WITH ORDINALITY AS e({names}, ord) "
            "ORDER BY e.ord)"
        )
    return ctes, param


@cache
def commit_sql(audit: bool, metrics: bool, logs: bool) -> str:
    """The commit as one statement: a versioned UPDATE plus the entry inserts it gates.

    Entry kinds without entries are left out of the text, so their parameters are not sent;
    each of the eight variants is prepared once per connection.
    """
    ctes, _ = _entry_ctes("u", UPDATE_WORKFLOW_PARAMS + 1, (audit, metrics, logs))
    with_entries = "".join(f", {cte}" for cte in ctes)
    return (
        f"WITH u AS ({UPDATE_WORKFLOW} RETURNING version, workflow_type)"
        f"{with_entries} SELECT version FROM u"
    )


@cache
def create_sql(audit: bool) -> str:
    """The create as one statement: the row (unless its idempotency key is taken) + audit."""
    ctes, _ = _entry_ctes("w", INSERT_WORKFLOW_PARAMS + 1, (audit, False, False))
    with_entries = "".join(f", {cte}" for cte in ctes)
    return (
        f"WITH w AS ({_S.insert_workflow} ON CONFLICT (idempotency_key) DO NOTHING "
        f"RETURNING created_at, updated_at){with_entries} "
        "SELECT created_at, updated_at FROM w"
    )


# -- the batch commit (group commit) -------------------------------------------------------

_ARRAY_TYPES: dict[Kind, str] = {
    "text": "text",
    "int": "int4",
    "bool": "bool",
    "json": "text",  # the codec's text, cast to jsonb per element
    "time": "timestamptz",
}

# The parameters of UPDATE_WORKFLOW (as _rows.update_workflow_args orders them) as the columns
# of unnest(): (column name, array element type).
_BATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("expected", "int4"),
    *((column.name, _ARRAY_TYPES[column.kind]) for column in UPDATED_COLUMNS),
    ("lease_holder", "text"),
)


def _batch_value(column: Column, _number: int) -> str:
    """The new value of an updated column: its element of the unnest() row ``c``."""
    return f"c.{column.name}::jsonb" if column.kind == "json" else f"c.{column.name}"


_BATCH_UPDATE = f"""UPDATE workflow_executions AS w
SET {set_clause(_batch_value, "w")}
FROM unnest({", ".join(f"${n}::{kind}[]" for n, (_c, kind) in enumerate(_BATCH_COLUMNS, 1))})
    AS c({", ".join(column for column, _kind in _BATCH_COLUMNS)})
WHERE w.id = c.id AND w.version = c.expected
  AND {LEASE_FREE.format(table="w", holder="c.lease_holder")}
RETURNING w.id, w.version, w.workflow_type"""
"""The versioned update of many workflows (distinct ids) from parallel arrays."""

BATCH_CHECK = COMMIT_CHECK.replace("SELECT ", "SELECT id, ", 1).replace(
    "WHERE id = $1", "WHERE id = ANY($1::text[])"
)
""":data:`~._sql_leases.COMMIT_CHECK` of many workflows, each row led by its id."""


@cache
def batch_sql(audit: bool, metrics: bool, logs: bool) -> str:
    """Many commits as one statement: the versioned update of every row, plus the entries of
    exactly the rows it updated (joined on the workflow id, which is unique in a batch).

    Each entry array has a leading ``workflow_id`` array; entries keep their order (``ord``).
    """
    ctes: list[str] = []
    param = len(_BATCH_COLUMNS) + 1
    for (alias, target, columns), wanted in zip(_ENTRY_GROUPS, (audit, metrics, logs), strict=True):
        if not wanted:
            continue
        arrays = [f"${param}::text[]"]
        param += 1
        for _column, kind, _expr in columns:
            arrays.append(f"${param}::{kind}[]")
            param += 1
        names = ", ".join(column for column, _kind, _expr in columns)
        exprs = ", ".join(expr.format(owner="u") for _column, _kind, expr in columns)
        ctes.append(
            f"{alias} AS (INSERT INTO {target} SELECT u.id, {exprs}, now() "
            f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS e(workflow_id, {names}, ord) "
            "JOIN u ON u.id = e.workflow_id ORDER BY e.ord)"
        )
    with_entries = "".join(f", {cte}" for cte in ctes)
    return f"WITH u AS ({_BATCH_UPDATE}){with_entries} SELECT id, version FROM u"


def all_columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows → one list per column, the workflow id column included."""
    return [list(column) for column in zip(*rows, strict=True)]


def value_columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows of ``(workflow_id, *values)`` → one list per value column (the unnest arrays)."""
    return [list(column) for column in zip(*rows, strict=True)][1:]
