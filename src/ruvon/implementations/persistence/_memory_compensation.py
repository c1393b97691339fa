"""The compensation log of the memory provider.

Entries are kept as handed over, with their JSON values (``action_result``, ``state_before``,
``state_after``) as the JSON text :func:`ruvon.serialization.serialize` wrote, their id and
their time; the returned entries are built on read, the JSON parsed afresh each time.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ruvon.implementations.persistence._memory_entries import json_or_none, now
from ruvon.providers.persistence import CompensationEntry, check_compensation_action
from ruvon.serialization import loads

__all__ = ["KeptCompensation", "MemoryCompensationLog"]

KeptCompensation = tuple[CompensationEntry, str | None, str | None, str | None]
"""An entry with its action result, state before and state after as the codec's text."""


def _parsed(text: str | None) -> Any:
    return None if text is None else loads(text)


class MemoryCompensationLog(ABC):
    """The ``CompensationLog`` part of the memory provider (not public)."""

    def __init__(self) -> None:
        super().__init__()
        self._compensations: dict[str, list[tuple[KeptCompensation, int, datetime]]] = {}

    @abstractmethod
    def _require(self, workflow_id: str) -> None:
        """Raise :class:`WorkflowNotFoundError` unless the workflow exists."""

    @abstractmethod
    def _id(self) -> int:
        """The next entry id."""

    @staticmethod
    def _encode_compensations(entries: Sequence[CompensationEntry]) -> list[KeptCompensation]:
        """The entries with their JSON values serialized: done before anything is written, so
        a value the codec rejects raises its ``TypeError`` first."""
        kept: list[KeptCompensation] = []
        for entry in entries:
            check_compensation_action(entry.action_type)
            result, before = json_or_none(entry.action_result), json_or_none(entry.state_before)
            kept.append((entry, result, before, json_or_none(entry.state_after)))
        return kept

    def _append_compensations(
        self, workflow_id: str, kept: Sequence[KeptCompensation], at: datetime
    ) -> None:
        if kept:
            entries = self._compensations.setdefault(workflow_id, [])
            entries.extend((entry, self._id(), at) for entry in kept)

    def _drop_compensations(self, workflow_id: str) -> None:
        self._compensations.pop(workflow_id, None)

    async def log_compensation(self, workflow_id: str, entry: CompensationEntry) -> None:
        kept = self._encode_compensations([entry])
        self._require(workflow_id)
        self._append_compensations(workflow_id, kept, now())

    async def get_compensation_log(
        self, workflow_id: str, *, limit: int = 100
    ) -> list[CompensationEntry]:
        entries = self._compensations.get(workflow_id, [])[: max(limit, 0)]
        return [
            dataclasses.replace(
                entry,
                action_result=_parsed(result),
                state_before=_parsed(before),
                state_after=_parsed(after),
                workflow_id=workflow_id,
                id=entry_id,
                executed_at=at,
            )
            for (entry, result, before, after), entry_id, at in entries
        ]
