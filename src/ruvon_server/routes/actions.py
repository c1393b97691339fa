"""Driving runs: start (API-03), next (API-05), resume (API-06), retry (API-07), cancel
(API-08). Each request is one SDK call on a run loaded for it; the run's lease makes a second
request driving the same run at the same moment a 409 (``workflow_busy``) instead of running a
step twice. A step that fails is the run's outcome, not the request's: see
:mod:`ruvon_server.driving`.

``/rewind`` (API-09) is in :mod:`ruvon_server.routes.rewind`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from ruvon import JumpTargetError, UnknownWorkflowTypeError, WorkflowBuilder
from ruvon_server.auth import Principal
from ruvon_server.deps import BuilderDep, PrincipalDep, WorkflowIdDep
from ruvon_server.driving import drive, run_response, step_error
from ruvon_server.errors import ERROR_RESPONSES, ApiError
from ruvon_server.inputs import check_json, check_text
from ruvon_server.schemas.workflows import (
    CancelRequest,
    InputRequest,
    RetryRequest,
    RunResponse,
    StartRequest,
)

__all__ = ["router"]

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)


@router.post("/workflow/start", response_model=RunResponse, status_code=201)
@router.post("/workflows", response_model=RunResponse, status_code=201, include_in_schema=False)
@router.post(
    "/workflows/start", response_model=RunResponse, status_code=201, include_in_schema=False
)
async def start_workflow(body: StartRequest, builder: BuilderDep, who: PrincipalDep) -> RunResponse:
    """Create a run and run its first call: the first step and the steps ``automate_next``
    chains to it. The caller is its ``owner_id``. With an ``idempotency_key`` already used
    with the same data, the existing run is returned as it is (nothing runs).

    201 whatever the steps did: a step that failed leaves the run FAILED, with ``error``."""
    check_text(body.workflow_type, "workflow_type")
    check_text(body.idempotency_key, "idempotency_key")
    check_text(body.data_region, "data_region")
    check_json(body.initial_data, "initial_data")
    check_json(body.metadata, "metadata")
    try:
        workflow = await builder.start_workflow(
            body.workflow_type,
            body.initial_data,
            owner_id=who.user_id,
            org_id=who.org_id,
            actor=who.user_id,
            idempotency_key=body.idempotency_key,
            data_region=body.data_region,
            priority=body.priority,
            metadata=body.metadata,
        )
    except UnknownWorkflowTypeError as exc:
        details = {"workflow_type": exc.workflow_type, "known": builder.list_workflow_types()}
        raise ApiError(400, "unknown_workflow_type", str(exc), details) from exc
    except Exception as exc:
        error = step_error(exc)
        workflow_id = getattr(exc, "workflow_id", None)
        if error is None or not isinstance(workflow_id, str):
            raise
        failed = await builder.load_workflow(workflow_id, validate_state=False)
        return run_response(failed, None, error)
    return run_response(workflow, workflow.last_result)


@router.post("/workflow/{workflow_id}/next", response_model=RunResponse)
async def next_step(
    workflow_id: WorkflowIdDep,
    builder: BuilderDep,
    who: PrincipalDep,
    body: Annotated[InputRequest | None, Body()] = None,
) -> RunResponse:
    """Run the run's current step with ``user_input`` (and the steps ``automate_next`` chains
    to it). A waiting run (PAUSED, WAITING_HUMAN) resumes with it. Input the step's
    ``input_model`` refuses is a 422 with the field errors; nothing changes."""
    return await _with_input(workflow_id, builder, who, body, resume_only=False)


@router.post("/workflow/{workflow_id}/resume", response_model=RunResponse)
async def resume(
    workflow_id: WorkflowIdDep,
    builder: BuilderDep,
    who: PrincipalDep,
    body: Annotated[InputRequest | None, Body()] = None,
) -> RunResponse:
    """Like ``next``, for a waiting run only (PAUSED, WAITING_HUMAN): any other status is a
    409."""
    return await _with_input(workflow_id, builder, who, body, resume_only=True)


@router.post("/workflow/{workflow_id}/retry", response_model=RunResponse)
async def retry(
    workflow_id: WorkflowIdDep,
    builder: BuilderDep,
    who: PrincipalDep,
    body: Annotated[RetryRequest | None, Body()] = None,
) -> RunResponse:
    """Make a failed run (FAILED, FAILED_WORKER_CRASH, FAILED_CHILD_WORKFLOW) ACTIVE again at
    ``from_step`` (default: the step that failed) and, unless ``run`` is false, run it at once.
    Another status is a 409; an unknown step a 400 listing the run's steps."""
    request = body or RetryRequest()
    check_text(request.from_step, "from_step")
    workflow = await builder.load_workflow(workflow_id)
    try:
        await workflow.retry(request.from_step, actor=who.user_id)
    except JumpTargetError as exc:
        steps = [step.name for step in workflow.steps]
        raise ApiError(
            400,
            "unknown_step",
            f"The run has no step '{exc.target}'; its steps are: {', '.join(steps)}.",
            {"step": exc.target, "steps": steps},
        ) from exc
    if not request.run:
        return run_response(workflow)
    driven = await drive(workflow, workflow.next_step(actor=who.user_id))
    result = driven.value[0] if driven.value is not None else None
    return run_response(workflow, result, driven.error)


@router.post("/workflow/{workflow_id}/cancel", response_model=RunResponse)
async def cancel(
    workflow_id: WorkflowIdDep,
    builder: BuilderDep,
    who: PrincipalDep,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> RunResponse:
    """Cancel a run that has not ended (no compensation runs); ``reason`` is stored. A run
    that has ended is a 409."""
    reason = (body or CancelRequest()).reason
    check_text(reason, "reason", max_length=2000)
    # A run whose stored state no longer validates can still be cancelled.
    workflow = await builder.load_workflow(workflow_id, validate_state=False)
    await workflow.cancel(reason, actor=who.user_id)
    return run_response(workflow)


async def _with_input(
    workflow_id: str,
    builder: WorkflowBuilder,
    who: Principal,
    body: InputRequest | None,
    *,
    resume_only: bool,
) -> RunResponse:
    """``next`` and ``resume``: one SDK call with the request's ``user_input``."""
    user_input = (body or InputRequest()).user_input
    check_json(user_input, "user_input")
    workflow = await builder.load_workflow(workflow_id)
    call = workflow.resume if resume_only else workflow.next_step
    driven = await drive(workflow, call(user_input, actor=who.user_id))
    result = driven.value[0] if driven.value is not None else None
    return run_response(workflow, result, driven.error)
