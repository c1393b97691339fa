"""Cron schedules (API-16) over the store's schedule methods (docs/schedules.md): list,
create or replace by name, read, delete, pause, resume. Firing them is a
:class:`~ruvon.scheduler.ScheduleRunner`'s job (``ruvon scheduler run``), not the server's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ValidationError

from ruvon.errors import UnknownWorkflowTypeError
from ruvon.providers.persistence import ScheduleRecord
from ruvon_server.deps import BuilderDep, StoreDep
from ruvon_server.errors import ERROR_RESPONSES, ApiError
from ruvon_server.inputs import check_json, check_text
from ruvon_server.schemas.schedules import ScheduleList, ScheduleModel, ScheduleRequest
from ruvon_server.views import schedule

__all__ = ["router"]

router = APIRouter(tags=["schedules"], responses=ERROR_RESPONSES)

ScheduleName = Annotated[str, Path(description="The schedule's name.")]


def _name(name: str) -> str:
    checked = check_text(name, "schedule_name")
    assert checked is not None
    return checked


def _missing(name: str) -> ApiError:
    return ApiError(404, "schedule_not_found", f"Schedule '{name}' not found.")


@router.get("/schedules", response_model=ScheduleList)
async def list_schedules(store: StoreDep) -> ScheduleList:
    """Every schedule, enabled or not, by name."""
    return ScheduleList(schedules=[schedule(r) for r in await store.list_scheduled_workflows()])


@router.post(
    "/schedules",
    response_model=ScheduleModel,
    status_code=201,
    responses={200: {"model": ScheduleModel, "description": "An existing schedule replaced"}},
)
async def put_schedule(
    body: ScheduleRequest, builder: BuilderDep, store: StoreDep, response: Response
) -> ScheduleModel:
    """Create the schedule, or replace the one of that name (200). The workflow type must be
    registered and ``initial_data`` valid for its state model, so every fire can start a run;
    an invalid cron expression is a 422."""
    name = _name(body.schedule_name)
    check_text(body.workflow_type, "workflow_type")
    check_text(body.cron_expression, "cron_expression")
    check_json(body.initial_data, "initial_data")
    try:
        model = builder.get_state_model_class(body.workflow_type)
    except UnknownWorkflowTypeError as exc:
        details = {"workflow_type": exc.workflow_type, "known": builder.list_workflow_types()}
        raise ApiError(400, "unknown_workflow_type", str(exc), details) from exc
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            model.model_validate(body.initial_data)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            raise ApiError(
                422,
                "invalid_initial_data",
                f"initial_data does not validate as {model.__name__} of {body.workflow_type}.",
                {"errors": errors},
            ) from None
    existed = await store.get_scheduled_workflow(name) is not None
    try:
        record: ScheduleRecord = await store.register_scheduled_workflow(
            name, body.workflow_type, body.cron_expression, body.initial_data, body.enabled
        )
    except ValueError as exc:  # the store's check of the cron expression
        raise ApiError(422, "invalid_cron_expression", str(exc)) from exc
    if existed:
        response.status_code = 200
    return schedule(record)


@router.get("/schedules/{schedule_name}", response_model=ScheduleModel)
async def get_schedule(schedule_name: ScheduleName, store: StoreDep) -> ScheduleModel:
    name = _name(schedule_name)
    record = await store.get_scheduled_workflow(name)
    if record is None:
        raise _missing(name)
    return schedule(record)


@router.delete("/schedules/{schedule_name}", status_code=204, response_class=Response)
async def delete_schedule(schedule_name: ScheduleName, store: StoreDep) -> Response:
    """Delete the schedule; the runs it started stay."""
    name = _name(schedule_name)
    if not await store.delete_scheduled_workflow(name):
        raise _missing(name)
    return Response(status_code=204)


async def _enable(store: StoreDep, name: str, enabled: bool) -> ScheduleModel:
    record = await store.set_schedule_enabled(_name(name), enabled)
    if record is None:
        raise _missing(name)
    return schedule(record)


@router.post("/schedules/{schedule_name}/pause", response_model=ScheduleModel)
async def pause_schedule(schedule_name: ScheduleName, store: StoreDep) -> ScheduleModel:
    """Stop firing the schedule until it is resumed."""
    return await _enable(store, schedule_name, False)


@router.post("/schedules/{schedule_name}/resume", response_model=ScheduleModel)
async def resume_schedule(schedule_name: ScheduleName, store: StoreDep) -> ScheduleModel:
    """Fire again, from the first fire time after now (missed ones are skipped)."""
    return await _enable(store, schedule_name, True)
