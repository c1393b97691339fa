"""Ruvon: an embeddable Python workflow engine.

Workflows are declared in YAML, steps are Python functions, state is a Pydantic model, and every
step's outcome is committed durably (memory, SQLite or PostgreSQL). Importing ``ruvon`` has no
side effects.
"""

from ruvon.builder import WorkflowBuilder
from ruvon.errors import (
    ConcurrencyConflictError,
    DefinitionError,
    DefinitionIssue,
    DefinitionWarning,
    DuplicateIdempotencyKeyError,
    ExpressionError,
    HttpStepError,
    IdempotencyConflictError,
    InvalidInputError,
    InvalidTransitionError,
    JumpTargetError,
    MergeConflictError,
    NoRouteMatchedError,
    ParallelExecutionError,
    PersistenceError,
    RuvonError,
    StateValidationError,
    StepNotImplementedError,
    StepResultError,
    StepTimeoutError,
    StoredStateError,
    TaskNotFoundError,
    TemplateError,
    UnknownWorkflowTypeError,
    WorkflowLeasedError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from ruvon.models import (
    ALLOWED_TRANSITIONS,
    MergeConflictBehavior,
    MergeStrategy,
    SagaWorkflowException,
    StartSubWorkflowDirective,
    StepContext,
    StepKind,
    WorkflowJumpDirective,
    WorkflowPauseDirective,
    WorkflowStatus,
    WorkflowStep,
)
from ruvon.providers.observer import WorkflowObserver
from ruvon.workflow import Workflow

__version__ = "0.1.0"

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ConcurrencyConflictError",
    "DefinitionError",
    "DefinitionIssue",
    "DefinitionWarning",
    "DuplicateIdempotencyKeyError",
    "ExpressionError",
    "HttpStepError",
    "IdempotencyConflictError",
    "InvalidInputError",
    "InvalidTransitionError",
    "JumpTargetError",
    "MergeConflictBehavior",
    "MergeConflictError",
    "MergeStrategy",
    "NoRouteMatchedError",
    "ParallelExecutionError",
    "PersistenceError",
    "RuvonError",
    "SagaWorkflowException",
    "StartSubWorkflowDirective",
    "StateValidationError",
    "StepContext",
    "StepKind",
    "StepNotImplementedError",
    "StepResultError",
    "StepTimeoutError",
    "StoredStateError",
    "TaskNotFoundError",
    "TemplateError",
    "UnknownWorkflowTypeError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowJumpDirective",
    "WorkflowLeasedError",
    "WorkflowNotFoundError",
    "WorkflowObserver",
    "WorkflowPauseDirective",
    "WorkflowStateError",
    "WorkflowStatus",
    "WorkflowStep",
    "__version__",
]
