"""The columns of ``workflow_executions``, declared once, and the statement text made from them.

:data:`WORKFLOW_COLUMNS` names every column of a workflow row with its kind (how its values are
passed and read) and says which of them a commit writes. Everything that lists the columns is
generated from it, once, at import: the SELECT list, the INSERT and the versioned UPDATE of a
commit (here, in PostgreSQL syntax, rendered per dialect by ``_sql.Statements``), PostgreSQL's
batch UPDATE (``_pg_statements``), the row ⇄ record mapping (``_rows``) and the memory store's
copy of a record (``memory``). A new column is one entry here, one field of
:class:`~ruvon.providers.persistence.WorkflowRecord` (and of ``WorkflowUpdate`` if commits write
it) and a migration per dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Literal

from ruvon.providers.persistence import WorkflowRecord, WorkflowUpdate

__all__ = [
    "INSERT_COLUMNS",
    "INSERT_WORKFLOW",
    "INSERT_WORKFLOW_PARAMS",
    "LEASE_FREE",
    "SELECT_WORKFLOW",
    "UPDATED_COLUMNS",
    "UPDATE_WORKFLOW",
    "UPDATE_WORKFLOW_PARAMS",
    "WORKFLOW_COLUMNS",
    "Column",
    "Kind",
    "set_clause",
]

Kind = Literal["text", "int", "bool", "json", "time"]
"""How a column's values are passed and read: ``text`` and ``int`` as they are, ``bool`` as
0/1 in SQLite, ``json`` as the codec's text (JSONB in PostgreSQL, TEXT in SQLite), ``time`` as a
UTC datetime (TIMESTAMPTZ in PostgreSQL, fixed-width ISO text in SQLite)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of ``workflow_executions``, named like the ``WorkflowRecord`` field it holds.

    A column is a parameter of the INSERT (the record's value) unless ``on_insert`` gives the
    SQL to write instead, and a parameter of every commit's UPDATE if ``updated`` (the
    ``WorkflowUpdate`` field of the same name); ``on_update`` is SQL every commit writes.
    """

    name: str
    kind: Kind
    updated: bool = False
    """Written by every commit, from the ``WorkflowUpdate`` field of the same name."""
    default: str | None = None
    """SQL the INSERT writes when the record's value is ``None``."""
    on_insert: str | None = None
    """SQL the INSERT writes instead of a parameter (a value the store keeps itself)."""
    on_update: str | None = None
    """SQL every commit writes; ``{table}`` is the updated table's name (or alias)."""


WORKFLOW_COLUMNS: tuple[Column, ...] = (
    Column("id", "text"),
    Column("workflow_type", "text"),
    Column("workflow_version", "text"),
    Column("definition_snapshot", "json"),
    Column("state_model_path", "text"),
    Column("status", "text", updated=True),
    Column("state", "json", updated=True),
    Column("current_step", "text", updated=True),
    Column("current_step_index", "int", updated=True),
    Column("metadata", "json", updated=True),
    Column("completed_steps_stack", "json", updated=True),
    Column("progress", "json", updated=True),
    Column("saga_mode", "bool", updated=True),
    Column("parent_execution_id", "text"),
    Column("blocked_on_child_id", "text", updated=True),
    Column("owner_id", "text"),
    Column("org_id", "text"),
    Column("data_region", "text"),
    Column("priority", "int"),
    Column("idempotency_key", "text"),
    Column("idempotency_hash", "text"),
    Column("error_message", "text", updated=True),
    Column("version", "int", on_insert="1", on_update="{table}.version + 1"),
    Column("created_at", "time", default="now()"),
    Column("updated_at", "time", on_insert="now()", on_update="now()"),
    Column("completed_at", "time", updated=True),
    Column("lease_owner", "text", updated=True),
    Column("lease_expires_at", "time", updated=True),
    Column("commit_token", "text", updated=True),
)
"""The columns of a workflow row, in the field order of ``WorkflowRecord`` (checked at import):
a row selected with :data:`SELECT_WORKFLOW` holds the record's fields in order."""

INSERT_COLUMNS: tuple[Column, ...] = tuple(c for c in WORKFLOW_COLUMNS if c.on_insert is None)
"""The parameters of :data:`INSERT_WORKFLOW`, in order."""

UPDATED_COLUMNS: tuple[Column, ...] = tuple(c for c in WORKFLOW_COLUMNS if c.updated)
"""The columns a commit writes from its ``WorkflowUpdate``: parameters ``$3``... of
:data:`UPDATE_WORKFLOW`, in order."""


def _check() -> None:
    """The declaration must match the records: a mismatch is a bug, reported at import."""
    names = [column.name for column in WORKFLOW_COLUMNS]
    record = [field.name for field in fields(WorkflowRecord)]
    if names != record:
        raise TypeError(
            f"WORKFLOW_COLUMNS {names} must name the fields of WorkflowRecord in order: {record}."
        )
    updated = {column.name for column in UPDATED_COLUMNS}
    update = {field.name for field in fields(WorkflowUpdate)} - {"workflow_id"}
    if updated != update:
        raise TypeError(
            f"The updated columns {sorted(updated)} must be the fields of WorkflowUpdate "
            f"but workflow_id: {sorted(update)}."
        )
    for column in WORKFLOW_COLUMNS:
        if column.updated and column.on_update is not None:
            raise TypeError(f"Column {column.name!r} is both updated and set on update.")


_check()

_CASTS: dict[Kind, str] = {"json": "::jsonb", "time": "::timestamptz"}


def _parameter(column: Column, number: int) -> str:
    """Parameter ``$number`` for ``column``, cast where PostgreSQL needs the type."""
    return f"${number}{_CASTS.get(column.kind, '')}"


def set_clause(value: Callable[[Column, int], str], table: str) -> str:
    """The SET list of a commit: ``value(column, n)`` for the n-th updated column (from 1),
    then the ``on_update`` SQL of the columns the store keeps, on ``table``."""
    assignments: list[str] = []
    number = 0
    for column in WORKFLOW_COLUMNS:
        if column.updated:
            number += 1
            assignments.append(f"{column.name} = {value(column, number)}")
        elif column.on_update is not None:
            assignments.append(f"{column.name} = {column.on_update.format(table=table)}")
    return ", ".join(assignments)


def _insert_values() -> str:
    values: list[str] = []
    number = 0
    for column in WORKFLOW_COLUMNS:
        if column.on_insert is not None:
            values.append(column.on_insert)
            continue
        number += 1
        parameter = _parameter(column, number)
        values.append(
            parameter if column.default is None else f"COALESCE({parameter}, {column.default})"
        )
    return ", ".join(values)


_NAMES = ", ".join(column.name for column in WORKFLOW_COLUMNS)

LEASE_FREE = (
    "({table}.lease_owner IS NULL OR {table}.lease_owner = {holder}::text"
    " OR {table}.lease_expires_at <= now())"
)
"""The lease condition of a write by ``{holder}`` on ``{table}``: nobody else holds a live
lease."""

SELECT_WORKFLOW = f"SELECT {_NAMES} FROM workflow_executions"
"""The SELECT of a workflow row, without its WHERE (see ``_rows.workflow_from_row``)."""

INSERT_WORKFLOW = (
    f"INSERT INTO workflow_executions (seq, {_NAMES})\nVALUES ({{seq}}, {_insert_values()})"
)
"""The insert of a new row (version 1); ``{seq}`` is the dialect's ``Dialect.next_seq``."""

INSERT_WORKFLOW_PARAMS = len(INSERT_COLUMNS)
"""How many parameters :data:`INSERT_WORKFLOW` takes."""

UPDATE_WORKFLOW = (
    "UPDATE workflow_executions\n"
    f"SET {set_clause(lambda column, n: _parameter(column, n + 2), 'workflow_executions')}\n"
    "WHERE id = $1 AND version = $2"
    f" AND {LEASE_FREE.format(table='workflow_executions', holder=f'${len(UPDATED_COLUMNS) + 3}')}"
)
"""The versioned update of a commit: ``$1`` id, ``$2`` expected version, then the updated
columns, then the lease holder (``WorkflowCommit.lease_holder``)."""

UPDATE_WORKFLOW_PARAMS = 3 + len(UPDATED_COLUMNS)
"""How many parameters :data:`UPDATE_WORKFLOW` takes."""
