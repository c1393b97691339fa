"""The compensation log (``compensation_log``, migration 0001): one entry per compensation a
saga's rollback ran, with the state before and after it.

The engine writes these entries with the commit that records the compensation
(:attr:`~ruvon.providers.records.WorkflowCommit.compensations`), in the same transaction as the
row and its audit entries, so an entry exists exactly when the compensation's outcome was
committed. :class:`CompensationLog` is the part of the persistence contract that reads them (and
appends one outside a commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ruvon.serialization import Encoded

__all__ = [
    "COMPENSATE",
    "COMPENSATE_FAILED",
    "COMPENSATION_ACTIONS",
    "CompensationEntry",
    "CompensationLog",
    "check_compensation_action",
]

COMPENSATE = "COMPENSATE"
"""``action_type`` of a compensation that ran to its end (its result merged into the state)."""
COMPENSATE_FAILED = "COMPENSATE_FAILED"
"""``action_type`` of a compensation that raised, or whose result could not be stored."""
COMPENSATION_ACTIONS: frozenset[str] = frozenset({COMPENSATE, COMPENSATE_FAILED})


@dataclass(frozen=True, slots=True)
class CompensationEntry:
    """One row of the compensation log. ``id`` (``log_id``), ``workflow_id`` and
    ``executed_at`` are set on read.

    ``step_name``/``step_index`` name the forward step that was compensated; ``action_result``
    is what its compensation returned (``COMPENSATE``), ``error_message`` why it failed
    (``COMPENSATE_FAILED``); ``executed_by`` is the actor of the call that ran it.
    ``state_before`` and ``state_after`` are the workflow's state around the compensation (equal
    when it failed); they may be handed over already encoded and are read back as dicts.
    """

    step_name: str
    action_type: str
    step_index: int | None = None
    action_result: dict[str, Any] | None = None
    error_message: str | None = None
    executed_by: str | None = None
    state_before: dict[str, Any] | Encoded | None = None
    state_after: dict[str, Any] | Encoded | None = None
    workflow_id: str | None = None
    id: int | None = None
    executed_at: datetime | None = None


def check_compensation_action(action_type: str) -> str:
    """``action_type`` if it is COMPENSATE or COMPENSATE_FAILED, else ``ValueError``."""
    if action_type not in COMPENSATION_ACTIONS:
        raise ValueError(
            f"Invalid compensation action_type {action_type!r}; expected COMPENSATE or "
            "COMPENSATE_FAILED."
        )
    return action_type


@runtime_checkable
class CompensationLog(Protocol):
    """The compensation log of each workflow (DB-07, PP-11)."""

    async def log_compensation(self, workflow_id: str, entry: CompensationEntry) -> None:
        """Append one entry outside a commit. Raises :class:`WorkflowNotFoundError` for an
        unknown workflow and ``ValueError`` for an unknown ``action_type``."""
        ...

    async def get_compensation_log(
        self, workflow_id: str, *, limit: int = 100
    ) -> list[CompensationEntry]:
        """The entries of a workflow in the order they were written (at most ``limit``; a
        negative limit counts as 0)."""
        ...
