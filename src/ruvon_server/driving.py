"""Driving a run from a request: the SDK call, and what its outcome means for the response.

**A failing step is not a failed request.** The request asked the engine to run the step and
it did: the step raised, the engine recorded the failure (the run is FAILED, or
FAILED_ROLLED_BACK after a saga's compensations) and the response is the run as it is now —
200 (201 for a start) with ``status`` and ``error: {type, message, step}``. The client reads the
outcome from the body as for any other outcome (waiting, completed), and retries the run with
``POST /workflow/{id}/retry``. Only when recording the failure failed too (the database went
away) is it a 503.

Invalid input for the step (``InvalidInputError``: nothing ran, nothing changed) is a 422 with
its field errors (``InvalidInputError.errors``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ruvon import InvalidInputError, Workflow, WorkflowStatus
from ruvon.injection import injected_snapshot
from ruvon.serialization import jsonable
from ruvon_server.errors import ApiError, sdk_error
from ruvon_server.schemas.workflows import RunResponse, StepError

__all__ = [
    "Driven",
    "drive",
    "run_definition",
    "run_response",
    "step_definition",
    "step_error",
]

T = TypeVar("T")

_FAILED = frozenset({WorkflowStatus.FAILED, WorkflowStatus.FAILED_ROLLED_BACK})


@dataclass(frozen=True)
class Driven(Generic[T]):
    """What a driving call returned, or the step failure it ended with."""

    value: T | None
    error: StepError | None


async def drive(workflow: Workflow, call: Awaitable[T]) -> Driven[T]:
    """Await ``call`` (an SDK call that runs steps of ``workflow``); see the module for what a
    failing step and invalid input become."""
    version = workflow.version
    try:
        return Driven(await call, None)
    except InvalidInputError as exc:
        raise _invalid_input(exc) from exc
    except Exception as exc:
        failure = step_error(exc, workflow, version)
        if failure is None:
            raise
        return Driven(None, failure)


def step_error(
    exc: Exception, workflow: Workflow | None = None, version: int | None = None
) -> StepError | None:
    """What ``exc`` says about the step that raised it, if it is a step's failure the engine
    recorded (None: any other error). A failure it could not record is a 503."""
    lost = getattr(exc, "commit_error", None)
    if lost is not None:
        raise ApiError(
            503,
            "database_unavailable",
            f"Step '{getattr(exc, 'step_name', '?')}' failed ({type(exc).__name__}: {exc}) and "
            f"recording the failure failed too ({lost}); the stored run is unchanged.",
        ) from exc
    failed = getattr(exc, "workflow_status", None) is not None or (
        # an exception that refused the engine's attributes: the run itself says it failed
        workflow is not None and workflow.version != version and workflow.status in _FAILED
    )
    if not failed:
        return None
    step = getattr(exc, "step_name", None)
    if step is None and workflow is not None:
        step = workflow.current_step_name
    return StepError(type=type(exc).__name__, message=str(exc), step=step)


def run_definition(workflow: Workflow) -> dict[str, Any]:
    """The run's definition: its snapshot, with the steps injected into it, if any."""
    snapshot = workflow.definition_snapshot
    injected = workflow.injected_steps
    return injected_snapshot(snapshot, injected) if injected else dict(snapshot)


def step_definition(workflow: Workflow, step_name: str) -> Mapping[str, Any] | None:
    """The configuration of the run's step ``step_name`` (a top-level step), or None."""
    for step in run_definition(workflow).get("steps", []):
        if isinstance(step, Mapping) and step.get("name") == step_name:
            return step
    return None


def _invalid_input(exc: InvalidInputError) -> ApiError:
    """The 422 for input the step refused, with its field errors."""
    mapped = sdk_error(exc)
    assert mapped is not None
    return ApiError(
        mapped.status, mapped.type, mapped.message, {**(mapped.details or {}), "errors": exc.errors}
    )


def run_response(
    workflow: Workflow, result: Mapping[str, Any] | None = None, error: StepError | None = None
) -> RunResponse:
    """The run as a driving request leaves it."""
    data = workflow.to_dict()
    state = jsonable(data["state"])
    return RunResponse(
        workflow_id=workflow.id,
        workflow_type=workflow.workflow_type,
        status=workflow.status.value,
        current_step=workflow.current_step_name,
        state=state if isinstance(state, dict) else {"value": state},
        result=jsonable(dict(result)) if result is not None else None,
        error=error,
        updated_at=workflow.updated_at,
    )
