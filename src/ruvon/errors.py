"""Ruvon's exceptions.

Every error Ruvon raises derives from :class:`RuvonError`. Errors that users of the original
documentation catch as ``ValueError`` also derive from ``ValueError``::

    RuvonError
    ├── DefinitionError (ValueError)         a registry or workflow file is invalid (every issue)
    ├── ExpressionError (ValueError)         a condition cannot be parsed or evaluated safely
    ├── TemplateError (ValueError)           a template cannot be rendered
    ├── WorkflowStateError (ValueError)      the operation is not allowed in the workflow's status
    │   └── InvalidTransitionError           a status change the transition table forbids
    ├── InvalidInputError (ValueError)       user input failed the step's input_model
    ├── StepResultError (ValueError)         a step returned what cannot be merged or stored
    ├── StateValidationError (ValueError)    a step left the state invalid (nothing committed)
    ├── StoredStateError (ValueError)        a stored state no longer validates against its model
    ├── IdempotencyConflictError (ValueError)  a reused idempotency key with different data
    ├── UnknownWorkflowTypeError (ValueError)  the registry has no such workflow type
    ├── NoRouteMatchedError (ValueError)     a DECISION step found no route
    ├── JumpTargetError (ValueError)         a jump names a step that does not exist
    ├── StepNotImplementedError (NotImplementedError)  the step kind has no runtime yet
    ├── StepTimeoutError (TimeoutError)      an attempt of a step ran past its timeout_seconds
    ├── HttpStepError                        an HTTP step got an error status or no response
    ├── ParallelExecutionError (ValueError)  tasks of a PARALLEL step failed (no partial success)
    ├── MergeConflictError (ValueError)      PARALLEL tasks returned different values for one key
    └── PersistenceError (RuntimeError)      the store failed; driver errors are translated to these
        ├── WorkflowNotFoundError (ValueError)
        ├── TaskNotFoundError (ValueError)  the task queue has no task with this id
        ├── ConcurrencyConflictError         a stale writer: another one advanced the workflow
        │   └── WorkflowLeasedError          another driver holds the run's lease right now
        └── DuplicateIdempotencyKeyError

``DefinitionWarning`` (a ``UserWarning``, not raised) describes a definition that loads but
probably misbehaves; see its docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


class RuvonError(Exception):
    """Base class of every error raised by Ruvon."""


@dataclass(frozen=True)
class DefinitionIssue:
    """One problem found in a registry or workflow file."""

    message: str
    file: str | None = None
    line: int | None = None
    step: str | None = None
    key: str | None = None
    column: int | None = None
    """1-based, when the problem is at a known column (YAML syntax errors)."""

    def __str__(self) -> str:
        where = self.file or "<definition>"
        if self.line is not None:
            where = f"{where}:{self.line}"
            if self.column is not None:
                where = f"{where}:{self.column}"
        parts = [where]
        if self.step is not None:
            parts.append(f"step '{self.step}'")
        if self.key is not None:
            parts.append(f"key '{self.key}'")
        return f"{', '.join(parts)}: {self.message}"


class DefinitionError(RuvonError, ValueError):
    """A workflow definition is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[DefinitionIssue], *, source: str | None = None) -> None:
        self.issues = list(issues)
        self.source = source
        count = len(self.issues)
        head = f"Invalid workflow definition{f' {source}' if source else ''}"
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{head}: {count} {noun}\n{lines}")


class ExpressionError(RuvonError, ValueError):
    """An expression is not valid or uses something the safe evaluator forbids."""


class TemplateError(RuvonError, ValueError):
    """A template could not be rendered (syntax error, undefined variable, sandbox violation)."""


class WorkflowStateError(RuvonError, ValueError):
    """The operation is not allowed while the workflow is in its current status."""


class InvalidTransitionError(WorkflowStateError):
    """A status change that the transition table does not allow."""

    def __init__(self, old: str, new: str) -> None:
        self.old_status = old
        self.new_status = new
        super().__init__(f"Workflow status cannot change from {old} to {new}.")


class InvalidInputError(RuvonError, ValueError):
    """User input did not validate against the step's ``input_model`` (or lacked a key of its
    ``required_input``); nothing was changed. ``errors`` says it field by field:
    ``{"field": "approver", "message": "String should have at least 1 character", "type":
    "string_too_short"}`` (``field`` is a dotted path, ``input`` for the input as a whole)."""

    def __init__(
        self, step_name: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        self.step_name = step_name
        self.errors: list[dict[str, str]] = list(errors or [])
        super().__init__(f"Invalid input for step '{step_name}': {detail}")


class StepResultError(RuvonError, ValueError):
    """A step returned something that cannot become part of its workflow: not a dict, or a
    value the JSON codec cannot store. The step fails; nothing it returned is committed."""

    def __init__(self, step_name: str, detail: str, *, key: str | None = None) -> None:
        self.step_name = step_name
        self.key = key
        super().__init__(f"Step '{step_name}' {detail}")


class StateValidationError(RuvonError, ValueError):
    """A state does not validate against the state model: the initial data of a new workflow,
    or the state a step left behind (e.g. a field assigned in place with a wrong value). Nothing
    is stored; when a step caused it, the step fails and the committed state stands.
    ``errors`` lists each problem as ``field: reason``."""

    def __init__(
        self,
        errors: Sequence[str],
        *,
        model: str,
        step_name: str | None = None,
        workflow_type: str | None = None,
    ) -> None:
        self.errors = list(errors)
        self.step_name = step_name
        self.workflow_type = workflow_type
        if step_name is not None:
            head = f"Step '{step_name}' left a state that does not validate as {model}"
        elif workflow_type is not None:
            head = f"Initial data for workflow type '{workflow_type}' does not validate as {model}"
        else:
            head = f"The state does not validate as {model}"
        super().__init__(f"{head}: {'; '.join(self.errors)}")


class StoredStateError(RuvonError, ValueError):
    """The state stored with a workflow no longer validates against its state model (e.g. the
    model changed). ``raw_state`` holds what is stored; the run can still be cancelled."""

    def __init__(
        self, workflow_id: str, model: str, errors: Sequence[str], raw_state: object
    ) -> None:
        self.workflow_id = workflow_id
        self.errors = list(errors)
        self.raw_state = raw_state
        super().__init__(
            f"The stored state of workflow '{workflow_id}' does not validate as {model}: "
            f"{'; '.join(errors)}. Inspect it with load_workflow(..., validate_state=False) "
            "(the raw state is in .state) and cancel it, or fix the model."
        )


class IdempotencyConflictError(RuvonError, ValueError):
    """An idempotency key was reused with different initial data: the key names another run."""

    def __init__(self, key: str, workflow_id: str, workflow_type: str) -> None:
        self.idempotency_key = key
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        super().__init__(
            f"Idempotency key '{key}' already belongs to workflow '{workflow_id}' "
            f"({workflow_type}) started with different initial data; use a new key for a "
            "new request, or the same data to get the existing workflow."
        )


class UnknownWorkflowTypeError(RuvonError, ValueError):
    """The registry (and the config directory) has no workflow of this type."""

    def __init__(self, workflow_type: str) -> None:
        self.workflow_type = workflow_type
        super().__init__(f"Workflow type '{workflow_type}' not found in registry.")


class NoRouteMatchedError(RuvonError, ValueError):
    """A DECISION step evaluated all its routes and none matched, and it has no default."""


class JumpTargetError(RuvonError, ValueError):
    """A jump (directive or route) names a step that does not exist in the workflow."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(f"Jump target step '{target}' not found.")


class StepNotImplementedError(RuvonError, NotImplementedError):
    """The step's kind is part of the language but has no runtime in this version."""

    def __init__(self, step_name: str, kind: str) -> None:
        self.step_name = step_name
        self.kind = kind
        super().__init__(
            f"Step '{step_name}' has type {kind}, which this version of Ruvon cannot run yet."
        )


class StepTimeoutError(RuvonError, TimeoutError):
    """An attempt of a step did not finish within the step's ``timeout_seconds``. The
    ``retry_policy`` applies to it like to any other failure."""

    def __init__(self, step_name: str, timeout_seconds: float) -> None:
        self.step_name = step_name
        self.timeout_seconds = timeout_seconds
        super().__init__(f"Step '{step_name}' timed out after {timeout_seconds} s")


class HttpStepError(RuvonError):
    """An HTTP step failed: the server answered 4xx (or 5xx once the retries ran out), or no
    response came at all (``status_code`` is then ``None``). ``body`` is the response's body
    (parsed JSON, else text), as the server sent it. The message names the step, the method,
    the URL without its query string (the step masks the secrets it used) and the status."""

    def __init__(
        self,
        step_name: str,
        method: str,
        url: str,
        *,
        status_code: int | None = None,
        body: object = None,
        detail: str = "",
    ) -> None:
        self.step_name = step_name
        self.method = method
        self.url = url
        self.status_code = status_code
        self.body = body
        if status_code is None:
            outcome = f"got no response ({detail})" if detail else "got no response"
        else:
            outcome = f"answered {status_code}" + (f": {detail}" if detail else "")
        super().__init__(f"HTTP step '{step_name}': {method} {url} {outcome}")


class PersistenceError(RuvonError, RuntimeError):
    """The persistence provider failed. Driver errors are translated into this type."""


class WorkflowNotFoundError(PersistenceError, ValueError):
    """No workflow with this id exists in the store."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"Workflow '{workflow_id}' not found.")


class TaskNotFoundError(PersistenceError, ValueError):
    """No task with this id exists in the store's task queue."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"Task '{task_id}' not found.")


class ConcurrencyConflictError(PersistenceError):
    """The workflow was changed by someone else since it was loaded; nothing was written."""

    def __init__(self, workflow_id: str, expected_version: int) -> None:
        self.workflow_id = workflow_id
        self.expected_version = expected_version
        super().__init__(
            f"Workflow '{workflow_id}' was modified concurrently (expected version "
            f"{expected_version}); reload it and try again. Nothing was written."
        )


class WorkflowLeasedError(ConcurrencyConflictError):
    """Somebody else drives the workflow right now (it holds the run's lease); nothing was run
    or written. Try again once their call has ended, or after ``lease_expires_at``."""

    def __init__(
        self,
        workflow_id: str,
        expected_version: int,
        owner: str | None,
        expires_at: datetime | None,
    ) -> None:
        self.workflow_id = workflow_id
        self.expected_version = expected_version
        self.owner = owner
        self.expires_at = expires_at
        until = expires_at.isoformat() if expires_at is not None else "unknown"
        PersistenceError.__init__(
            self,
            f"Workflow '{workflow_id}' is being driven by {owner} (lease until {until}); "
            "nothing was run or written. Try again when that call has ended.",
        )


class DuplicateIdempotencyKeyError(PersistenceError):
    """A raw insert used an idempotency key that another workflow already holds."""

    def __init__(self, key: str) -> None:
        self.idempotency_key = key
        super().__init__(f"Idempotency key '{key}' is already used by another workflow.")


class DefinitionWarning(UserWarning):
    """A definition that loads but probably does not do what its author meant (a branch that
    falls through into another branch). ``issue`` says where.

    Ruvon does not call :func:`warnings.warn` with it: warnings are kept on the compiled
    definition, logged once by the builder (logger ``ruvon.definition``) and returned by
    ``WorkflowBuilder.validate()``. Applications that want them as Python warnings can call
    ``warnings.warn(DefinitionWarning(issue))`` themselves.
    """

    def __init__(self, issue: DefinitionIssue) -> None:
        self.issue = issue
        super().__init__(str(issue))


class ParallelExecutionError(RuvonError, ValueError):
    """Tasks of a PARALLEL step failed (raised, timed out, returned a non-dict) and the step
    does not allow partial success: the step fails and none of the results is merged.
    ``errors`` maps each failed task to ``"ErrorType: message"``, in declared order."""

    def __init__(self, step_name: str, errors: Mapping[str, str]) -> None:
        self.step_name = step_name
        self.errors = dict(errors)
        if len(self.errors) == 1:
            ((task, error),) = self.errors.items()
            message = f"Parallel task '{task}' of step '{step_name}' failed: {error}"
        else:
            listed = ", ".join(f"'{task}' ({error})" for task, error in self.errors.items())
            message = f"{len(self.errors)} parallel tasks of step '{step_name}' failed: {listed}"
        super().__init__(message)


class MergeConflictError(RuvonError, ValueError):
    """Two tasks of a PARALLEL step with ``merge_conflict_behavior: RAISE_ERROR`` returned
    different values for the same key (``a.b`` for a nested key under DEEP). ``tasks`` are the
    two tasks, in declared order; nothing is merged."""

    def __init__(self, step_name: str, key: str, first_task: str, second_task: str) -> None:
        self.step_name = step_name
        self.key = key
        self.tasks = (first_task, second_task)
        super().__init__(
            f"Key '{key}' exists in multiple task results of PARALLEL step '{step_name}': "
            f"tasks '{first_task}' and '{second_task}' returned different values "
            "(merge_conflict_behavior is RAISE_ERROR)"
        )
