"""Public runtime values: statuses and their transition table, step kinds, merge options, the
context a step function receives, and the directives a step can raise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ruvon.errors import InvalidTransitionError


class _StrEnum(str, Enum):
    """A string enum whose members print as their value (like ``enum.StrEnum`` on 3.11+)."""

    def __str__(self) -> str:
        return str(self.value)


class WorkflowStatus(_StrEnum):
    """A workflow's status, stored exactly as these strings."""

    ACTIVE = "ACTIVE"
    PENDING_ASYNC = "PENDING_ASYNC"
    PENDING_SUB_WORKFLOW = "PENDING_SUB_WORKFLOW"
    PAUSED = "PAUSED"
    WAITING_HUMAN = "WAITING_HUMAN"
    WAITING_HUMAN_INPUT = "WAITING_HUMAN_INPUT"
    WAITING_CHILD_HUMAN_INPUT = "WAITING_CHILD_HUMAN_INPUT"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    FAILED_ROLLED_BACK = "FAILED_ROLLED_BACK"
    FAILED_CHILD_WORKFLOW = "FAILED_CHILD_WORKFLOW"
    FAILED_WORKER_CRASH = "FAILED_WORKER_CRASH"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, every FAILED* status and CANCELLED."""
        return self in TERMINAL_STATUSES

    @property
    def is_waiting(self) -> bool:
        """True while the workflow waits for a person (``next_step(user_input)`` resumes it)."""
        return self in WAITING_STATUSES


S = WorkflowStatus

TERMINAL_STATUSES: frozenset[WorkflowStatus] = frozenset(
    {
        S.COMPLETED,
        S.FAILED,
        S.FAILED_ROLLED_BACK,
        S.FAILED_CHILD_WORKFLOW,
        S.FAILED_WORKER_CRASH,
        S.CANCELLED,
    }
)
"""Statuses in which the workflow runs no further step on its own."""

RETRYABLE_STATUSES: frozenset[WorkflowStatus] = frozenset(
    {S.FAILED, S.FAILED_WORKER_CRASH, S.FAILED_CHILD_WORKFLOW}
)
"""Terminal statuses that ``Workflow.retry()`` may leave (back to ACTIVE)."""

WAITING_STATUSES: frozenset[WorkflowStatus] = frozenset(
    {S.PAUSED, S.WAITING_HUMAN, S.WAITING_HUMAN_INPUT}
)
"""Statuses that ``next_step(user_input)`` resumes."""

_FAILURES = (S.FAILED, S.FAILED_ROLLED_BACK, S.FAILED_WORKER_CRASH)

ALLOWED_TRANSITIONS: Mapping[WorkflowStatus, frozenset[WorkflowStatus]] = {
    S.ACTIVE: frozenset(
        {
            S.ACTIVE,
            S.PENDING_ASYNC,
            S.PENDING_SUB_WORKFLOW,
            S.PAUSED,
            S.WAITING_HUMAN,
            S.COMPLETED,
            S.CANCELLED,
            S.FAILED_CHILD_WORKFLOW,  # the end of a saga parent's rollback after its child failed
            *_FAILURES,
        }
    ),
    S.PENDING_ASYNC: frozenset({S.ACTIVE, S.COMPLETED, S.CANCELLED, *_FAILURES}),
    S.PENDING_SUB_WORKFLOW: frozenset(
        {
            S.ACTIVE,
            S.WAITING_CHILD_HUMAN_INPUT,
            S.FAILED_CHILD_WORKFLOW,
            S.CANCELLED,
            S.FAILED_WORKER_CRASH,
        }
    ),
    S.WAITING_CHILD_HUMAN_INPUT: frozenset(
        {S.PENDING_SUB_WORKFLOW, S.ACTIVE, S.FAILED_CHILD_WORKFLOW, S.CANCELLED}
    ),
    S.PAUSED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.WAITING_HUMAN: frozenset({S.ACTIVE, S.CANCELLED}),
    S.WAITING_HUMAN_INPUT: frozenset({S.ACTIVE, S.CANCELLED}),
    S.FAILED: frozenset({S.ACTIVE}),
    S.FAILED_WORKER_CRASH: frozenset({S.ACTIVE}),
    S.FAILED_CHILD_WORKFLOW: frozenset({S.ACTIVE}),
    S.FAILED_ROLLED_BACK: frozenset(),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
"""The one table of allowed status changes. Every status change in the engine goes through
:func:`check_transition`. ``WAITING_HUMAN_INPUT`` is accepted when read but never written."""


def check_transition(old: WorkflowStatus, new: WorkflowStatus) -> None:
    """Raise :class:`InvalidTransitionError` unless ``old -> new`` is in the table."""
    if new not in ALLOWED_TRANSITIONS[old]:
        raise InvalidTransitionError(old.value, new.value)


def normalize_status(value: str | WorkflowStatus) -> WorkflowStatus:
    """Parse a status string; ``WAITING_HUMAN_INPUT`` is read as ``WAITING_HUMAN``."""
    status = WorkflowStatus(value)
    return S.WAITING_HUMAN if status is S.WAITING_HUMAN_INPUT else status


def statuses_matching(status: str | Sequence[str] | None) -> frozenset[str] | None:
    """The stored status strings a list filter matches (``None``: no filter).

    Each value is normalized; WAITING_HUMAN also matches the legacy WAITING_HUMAN_INPUT.
    """
    if status is None:
        return None
    values = [status] if isinstance(status, str) else list(status)
    wanted: set[str] = set()
    for value in values:
        normalized = normalize_status(value)
        wanted.add(normalized.value)
        if normalized is S.WAITING_HUMAN:
            wanted.add(S.WAITING_HUMAN_INPUT.value)
    return frozenset(wanted)


class StepKind(_StrEnum):
    """The step types of the YAML language (the ``type`` key)."""

    STANDARD = "STANDARD"
    ASYNC = "ASYNC"
    DECISION = "DECISION"
    PARALLEL = "PARALLEL"
    HTTP = "HTTP"
    LOOP = "LOOP"
    FIRE_AND_FORGET = "FIRE_AND_FORGET"
    CRON_SCHEDULE = "CRON_SCHEDULE"
    HUMAN_IN_LOOP = "HUMAN_IN_LOOP"
    SUB_WORKFLOW = "SUB_WORKFLOW"


class MergeStrategy(_StrEnum):
    """How a step's result is merged into the state. Values are case-insensitive in YAML."""

    SHALLOW = "SHALLOW"
    DEEP = "DEEP"
    REPLACE = "REPLACE"
    APPEND = "APPEND"
    OVERWRITE_EXISTING = "OVERWRITE_EXISTING"
    PRESERVE_EXISTING = "PRESERVE_EXISTING"

    @classmethod
    def _missing_(cls, value: object) -> MergeStrategy | None:
        if isinstance(value, str):
            return cls.__members__.get(value.upper())
        return None


class MergeConflictBehavior(_StrEnum):
    """What happens when several results set the same key. ``PREFER_OLD`` means PREFER_EXISTING."""

    PREFER_NEW = "PREFER_NEW"
    PREFER_EXISTING = "PREFER_EXISTING"
    RAISE_ERROR = "RAISE_ERROR"

    @classmethod
    def _missing_(cls, value: object) -> MergeConflictBehavior | None:
        if isinstance(value, str):
            upper = value.upper()
            if upper == "PREFER_OLD":
                return cls.PREFER_EXISTING
            return cls.__members__.get(upper)
        return None


@dataclass(frozen=True, eq=False)
class WorkflowStep:
    """A step of a running workflow, as exposed by ``Workflow.current_step``.

    It compares equal to its name, so ``workflow.current_step == "Manual_Approval"`` works.
    """

    name: str
    type: StepKind
    index: int
    automate_next: bool = False
    description: str | None = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.name == other
        if isinstance(other, WorkflowStep):
            return (self.name, self.index) == (other.name, other.index)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


class StepContext(BaseModel):
    """What a step function receives besides the state. Read-only by convention."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    workflow_id: str
    step_name: str
    workflow_type: str | None = None
    step_index: int | None = None
    validated_input: Any = None
    previous_step_result: dict[str, Any] | None = None
    loop_item: Any = None
    loop_index: int | None = None
    parent_workflow_id: str | None = None
    attempt: int = 1
    persistence: Any = Field(default=None, exclude=True, repr=False)
    """The workflow's persistence provider, e.g. for ``context.persistence.record_metric(...)``."""


class WorkflowJumpDirective(Exception):
    """Raised by a step to continue at another step (forward or backward).

    ``result`` is merged into the state before the jump.
    """

    def __init__(
        self,
        target_step_name: str | None = None,
        result: dict[str, Any] | None = None,
        *,
        target_step: str | None = None,
    ) -> None:
        target = target_step_name or target_step
        if not target:
            raise TypeError("WorkflowJumpDirective needs target_step_name")
        self.target_step_name: str = target
        self.result = result
        super().__init__(f"Jump to step '{target}'")


class WorkflowPauseDirective(Exception):
    """Raised by a step to pause the workflow until ``next_step(user_input)`` is called.

    ``result`` is merged into the state; ``waiting_for`` is stored in ``metadata["waiting_for"]``.
    The paused step counts as completed: the next call runs the following step with the input.
    """

    def __init__(self, result: dict[str, Any] | None = None, waiting_for: str | None = None):
        self.result = result
        self.waiting_for = waiting_for
        super().__init__(f"Pause{f' waiting for {waiting_for}' if waiting_for else ''}")


class StartSubWorkflowDirective(Exception):
    """Raised by a step to start a child workflow and wait for it."""

    def __init__(
        self,
        workflow_type: str,
        initial_data: dict[str, Any] | None = None,
        owner_id: str | None = None,
        data_region: str | None = None,
    ) -> None:
        self.workflow_type = workflow_type
        self.initial_data = initial_data or {}
        self.owner_id = owner_id
        self.data_region = data_region
        super().__init__(f"Start sub-workflow {workflow_type}")


class SagaWorkflowException(Exception):
    """Raised by a step to fail the workflow on purpose (and trigger compensation in saga mode)."""

    def __init__(
        self,
        message: str,
        original_exception: BaseException | None = None,
        *,
        step_name: str | None = None,
    ) -> None:
        self.original_exception = original_exception
        self.step_name = step_name
        super().__init__(message)
