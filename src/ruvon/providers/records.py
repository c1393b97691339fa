"""The records of the persistence contract: plain frozen data that stores take and return
(see :mod:`ruvon.providers.persistence`, which re-exports every name here), and the argument
checks every store applies the same way."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from secrets import token_hex
from typing import Any

from ruvon.providers.compensation import CompensationEntry
from ruvon.serialization import Encoded

__all__ = [
    "TASK_STATUSES",
    "AuditEvent",
    "Heartbeat",
    "LogEntry",
    "MetricPoint",
    "ScheduleRecord",
    "TaskRecord",
    "WorkflowCommit",
    "WorkflowRecord",
    "WorkflowUpdate",
    "check_aware",
    "check_page",
    "check_task_status",
    "new_commit_token",
]


@dataclass(frozen=True, slots=True)
class WorkflowUpdate:
    """The fields of a workflow row that change as it runs; written by ``commit_workflow``.

    Every commit writes every field: a field left at its default is stored as that default.
    ``progress`` is the engine's own JSON document of how the run is going (e.g. per-step
    statuses, the last step's result); stores keep it as an opaque value, like ``metadata``.
    ``state`` may come already encoded (:class:`ruvon.serialization.Encoded`): stores that
    serialize through :mod:`ruvon.serialization` write it as it is; others call
    ``.decode()``.
    """

    workflow_id: str
    status: str
    state: dict[str, Any] | Encoded
    current_step: str | None
    current_step_index: int
    metadata: dict[str, Any]
    completed_steps_stack: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    saga_mode: bool = False
    blocked_on_child_id: str | None = None
    error_message: str | None = None
    completed_at: datetime | None = None
    lease_owner: str | None = None
    """Who holds the run's lease after this commit (``None``: the commit releases it)."""
    lease_expires_at: datetime | None = None
    """Until when that lease holds, on the database's clock (``None`` with no owner)."""
    commit_token: str | None = None
    """A token naming this commit, stored with the row: a store that cannot tell whether a
    commit went through (the connection dropped after it was sent) recognises its own write by
    it on retry. ``None``: the store makes one if it needs one."""


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """One stored workflow: its identity, its definition snapshot and its current progress.

    ``version`` is the row version used for optimistic concurrency: 1 when created, +1 on every
    successful commit. ``idempotency_hash`` is stored as given with ``idempotency_key`` (a digest
    of the request that took the key, for the caller to compare when the key is reused); the
    stores never interpret it. ``progress`` is the engine's opaque JSON document of how the run
    is going (see :class:`WorkflowUpdate`); it may be set at create and is ``{}`` for rows
    written before it existed.
    """

    id: str
    workflow_type: str
    workflow_version: str | None
    definition_snapshot: dict[str, Any]
    state_model_path: str
    status: str
    state: dict[str, Any]
    current_step: str | None
    current_step_index: int
    metadata: dict[str, Any] = field(default_factory=dict)
    completed_steps_stack: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    saga_mode: bool = False
    parent_execution_id: str | None = None
    blocked_on_child_id: str | None = None
    owner_id: str | None = None
    org_id: str | None = None
    data_region: str | None = None
    priority: int = 5
    idempotency_key: str | None = None
    idempotency_hash: str | None = None
    error_message: str | None = None
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    lease_owner: str | None = None
    """Who drives the run now (see :mod:`ruvon.providers.leases`); ``None``: nobody."""
    lease_expires_at: datetime | None = None
    """Until when ``lease_owner``'s lease holds (the database's clock)."""
    commit_token: str | None = None
    """The token of the commit that wrote the row last (see :class:`WorkflowUpdate`)."""

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (the shape the REST API and CLI show)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def as_update(self, **changes: Any) -> WorkflowUpdate:
        """The row's changing fields as stored, as a :class:`WorkflowUpdate`, with ``changes``
        (field name → value) replacing some: a commit that changes only those (e.g. the zombie
        scanner's recovery, a worker's claim)."""
        values = {name: getattr(self, name) for name in _UPDATED_FIELDS}
        values["commit_token"] = None  # a new commit: the store names it anew
        values.update(changes)
        return WorkflowUpdate(workflow_id=self.id, **values)


_UPDATED_FIELDS = tuple(f.name for f in fields(WorkflowUpdate) if f.name != "workflow_id")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An append-only audit entry. ``id``, ``workflow_id`` and ``timestamp`` are set on read."""

    event_type: str
    step_name: str | None = None
    old_status: str | None = None
    new_status: str | None = None
    data: dict[str, Any] | None = None
    user_id: str | None = None
    worker_id: str | None = None
    duration_ms: float | None = None
    workflow_id: str | None = None
    id: int | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """A numeric measurement, e.g. ``step_duration_ms`` for every step the engine runs."""

    metric_name: str
    metric_value: float
    unit: str | None = None
    step_name: str | None = None
    tags: dict[str, Any] | None = None
    workflow_id: str | None = None
    workflow_type: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An execution log line kept with the workflow. ``level`` is stored upper-case."""

    level: str
    message: str
    step_name: str | None = None
    metadata: dict[str, Any] | None = None
    workflow_id: str | None = None
    id: int | None = None
    logged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkflowCommit:
    """One call of ``commit_workflow``: a workflow's new row and the entries written with it.

    ``update`` is written, together with the ``audit``, ``metrics``, ``logs`` and
    ``compensations`` (compensation log) entries, only if the stored row is still at
    ``expected_version`` (the version the workflow was loaded or last committed at) and nobody
    but ``lease_holder`` holds a live lease on it (``None``: the committer holds none, so the
    commit goes through only if the run's lease is free or expired). A provider reads the
    fields it knows by name, so a field added later (with a default) breaks no provider.
    """

    update: WorkflowUpdate
    expected_version: int
    audit: Sequence[AuditEvent] = ()
    metrics: Sequence[MetricPoint] = ()
    logs: Sequence[LogEntry] = ()
    compensations: Sequence[CompensationEntry] = ()
    lease_holder: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Proof of life of a worker running a step of a workflow."""

    workflow_id: str
    worker_id: str
    current_step: str | None
    last_heartbeat: datetime
    metadata: dict[str, Any] | None = None


TASK_STATUSES: frozenset[str] = frozenset({"PENDING", "CLAIMED", "RUNNING", "COMPLETED", "FAILED"})
"""The statuses a task of the task queue may have."""


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One unit of work in the task queue: a step of a workflow for a (distributed) worker.

    A task is created PENDING, taken by one worker with ``claim_next_task`` (CLAIMED, with
    ``worker_id`` and ``claimed_at``), then moved through RUNNING to COMPLETED or FAILED with
    ``update_task_status``. ``retry_count`` counts the FAILED updates.
    """

    task_id: str
    execution_id: str
    step_name: str
    step_index: int
    status: str
    worker_id: str | None = None
    claimed_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    retry_count: int = 0
    max_retries: int = 3
    last_error: str | None = None
    task_data: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    idempotency_key: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One cron schedule (a row of ``scheduled_workflows``), named uniquely by
    ``schedule_name``.

    ``next_run_at`` is the next fire time (UTC; ``None``: it never fires), ``last_run_at`` when
    a workflow was last started for it and ``run_count`` how many were started. Cron
    expressions are evaluated in UTC.
    """

    schedule_name: str
    workflow_type: str
    cron_expression: str
    initial_data: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    run_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (the shape the REST API and CLI show)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class _Tokens:
    """Commit tokens: a random prefix per process (made anew in a forked child) and a
    counter, which is unique enough (a token only tells a commit from the other commits of the
    same row) and costs a fraction of a random token per commit."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = token_hex(6)
        self.counter = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_TOKENS = _Tokens()


def new_commit_token() -> str:
    """A commit token no other commit of this or another process has (with overwhelming
    probability): what stores write when a ``WorkflowUpdate`` names none."""
    return _TOKENS.new()


def check_page(limit: int, offset: int) -> None:
    """``ValueError`` naming the argument if ``limit`` or ``offset`` is negative."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, not {value}.")


def check_aware(name: str, moment: datetime | None) -> datetime | None:
    """``moment`` if it is ``None`` or timezone-aware, else ``ValueError`` naming ``name``."""
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime (e.g. with tzinfo=timezone.utc), "
            f"not the naive {moment.isoformat()}."
        )
    return moment


def check_task_status(status: str) -> str:
    """``status`` if it is a task status, else ``ValueError``."""
    if status not in TASK_STATUSES:
        allowed = ", ".join(sorted(TASK_STATUSES))
        raise ValueError(f"Invalid task status {status!r}; expected one of {allowed}.")
    return status
