"""Reading runs: the list (API-02) and its counts per status, one run (API-04), its current
step (API-10), its graph and where each of its steps stands.

The list, the counts and the detail read stored records (nothing compiled); the current step's
input schema needs the run's compiled definition, so that one loads the run; the steps are
derived from the run's snapshot and audit trail (:mod:`ruvon_server.step_states`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Annotated, TypedDict

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from ruvon import WorkflowStatus
from ruvon.definition.graph import definition_graph
from ruvon_server.deps import BuilderDep, StoreDep, WorkflowIdDep, load_record
from ruvon_server.driving import step_definition
from ruvon_server.errors import ERROR_RESPONSES, ApiError
from ruvon_server.graphs import (
    GRAPH_RESPONSES,
    FormatQuery,
    GraphFormat,
    graph_response,
    parse_definition,
    run_definition,
)
from ruvon_server.inputs import check_text
from ruvon_server.schemas.graph import GraphModel
from ruvon_server.schemas.workflows import (
    CurrentStepInfo,
    RunSteps,
    StatusCounts,
    StepStateModel,
    WorkflowDetail,
    WorkflowList,
)
from ruvon_server.step_states import step_states
from ruvon_server.views import detail, summary

__all__ = ["router"]

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)

MAX_CHILDREN = 1000
"""The most child ids a run's detail lists."""

MAX_AUDIT = 100_000
"""The most audit entries read to place a run's steps."""

_STATUSES = tuple(s.value for s in WorkflowStatus if s is not WorkflowStatus.WAITING_HUMAN_INPUT)


def _statuses(text: str | None) -> list[str] | None:
    """``?status=A`` or ``?status=A,B`` (any case) -> the statuses, or a 422 naming the bad one."""
    if text is None or not text.strip():
        return None
    wanted: list[str] = []
    for part in text.split(","):
        name = part.strip().upper()
        try:
            wanted.append(WorkflowStatus(name).value)
        except ValueError:
            raise ApiError(
                422,
                "invalid_request",
                f"Unknown status '{part.strip()[:50]}'; use one of {', '.join(_STATUSES)}.",
                {"field": "status", "allowed": list(_STATUSES)},
            ) from None
    return wanted


class _Filters(TypedDict):
    """The filters ``list_workflows`` and ``count_workflows`` share."""

    status: list[str] | None
    workflow_type: str | None
    owner_id: str | None
    created_after: datetime | None
    created_before: datetime | None


def _aware(moment: datetime | None) -> datetime | None:
    """The time in UTC; a time without a zone is taken as UTC. A time whose UTC is before year
    1 or after 9999 (``0001-01-01T00:00+01:00``) is the earliest or latest time there is."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        if moment.year == 1:
            return datetime.min.replace(tzinfo=timezone.utc)
        return datetime.max.replace(tzinfo=timezone.utc)


@router.get("/workflows", response_model=WorkflowList)
async def list_workflows(
    builder: BuilderDep,
    status: Annotated[
        str | None, Query(description="A status, or several separated by commas.")
    ] = None,
    workflow_type: Annotated[
        str | None, Query(alias="type", description="A workflow type.")
    ] = None,
    owner: Annotated[
        str | None, Query(description="The owner_id (the user who started it).")
    ] = None,
    created_after: Annotated[
        datetime | None, Query(description="Inclusive; without a zone: UTC.")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Exclusive; without a zone: UTC.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    include_state: Annotated[bool, Query(description="Include each run's state.")] = False,
) -> WorkflowList:
    """Runs matching every filter, newest first, one page at a time; ``total`` counts them
    all."""
    filters = _Filters(
        status=_statuses(status),
        workflow_type=check_text(workflow_type, "type"),
        owner_id=check_text(owner, "owner"),
        created_after=_aware(created_after),
        created_before=_aware(created_before),
    )
    records = await builder.list_workflows(**filters, limit=limit, offset=offset)
    total = await builder.count_workflows(**filters)
    return WorkflowList(
        total=total,
        limit=limit,
        offset=offset,
        workflows=[summary(record, with_state=include_state) for record in records],
    )


@router.get("/workflows/counts", response_model=StatusCounts)
async def count_by_status(
    builder: BuilderDep,
    workflow_type: Annotated[
        str | None, Query(alias="type", description="A workflow type.")
    ] = None,
    owner: Annotated[
        str | None, Query(description="The owner_id (the user who started it).")
    ] = None,
) -> StatusCounts:
    """How many runs there are in each status (one indexed count per status; statuses with
    none are left out). The legacy WAITING_HUMAN_INPUT counts as WAITING_HUMAN."""
    wanted_type = check_text(workflow_type, "type")
    wanted_owner = check_text(owner, "owner")
    by_status: dict[str, int] = {}
    for status in _STATUSES:
        statuses = [status]
        if status == WorkflowStatus.WAITING_HUMAN.value:
            statuses.append(WorkflowStatus.WAITING_HUMAN_INPUT.value)
        count = await builder.count_workflows(
            status=statuses, workflow_type=wanted_type, owner_id=wanted_owner
        )
        if count:
            by_status[status] = count
    return StatusCounts(total=sum(by_status.values()), by_status=by_status)


@router.get("/workflow/{workflow_id}/status", response_model=WorkflowDetail)
@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail)
async def workflow_detail(
    builder: BuilderDep, store: StoreDep, workflow_id: WorkflowIdDep
) -> WorkflowDetail:
    """One run: status, current step, state, metadata, timestamps, its parent and children."""
    record = await load_record(store, workflow_id)
    children = await builder.list_workflows(parent_workflow_id=workflow_id, limit=MAX_CHILDREN)
    return detail(record, [child.id for child in children])


@router.get("/workflow/{workflow_id}/current_step_info", response_model=CurrentStepInfo)
async def current_step_info(builder: BuilderDep, workflow_id: WorkflowIdDep) -> CurrentStepInfo:
    """The step the run's next call runs, and the JSON Schema of the input it accepts (its
    ``input_model``), e.g. to build a form. ``name`` is null once the run has ended."""
    workflow = await builder.load_workflow(workflow_id, validate_state=False)
    step = workflow.current_step
    if step is None:
        return CurrentStepInfo(
            workflow_id=workflow.id, status=workflow.status.value, name=None, waiting=False
        )
    config = step_definition(workflow, step.name) or {}
    required = config.get("required_input") or []
    return CurrentStepInfo(
        workflow_id=workflow.id,
        status=workflow.status.value,
        name=step.name,
        type=step.type.value,
        index=step.index,
        description=step.description,
        automate_next=step.automate_next,
        waiting=workflow.status.is_waiting,
        required_input=[str(key) for key in required],
        input_schema=workflow.input_schema(),
    )


@router.get("/workflow/{workflow_id}/graph", response_model=GraphModel, responses=GRAPH_RESPONSES)
async def workflow_graph(
    store: StoreDep, workflow_id: WorkflowIdDep, how: FormatQuery = GraphFormat.json
) -> GraphModel | PlainTextResponse:
    """The graph of the run's own definition (the snapshot it was started with, with any
    steps injected into it), whatever the current file says."""
    record = await load_record(store, workflow_id)
    return graph_response(run_definition(record), how)


@router.get("/workflow/{workflow_id}/steps", response_model=RunSteps)
async def workflow_steps(store: StoreDep, workflow_id: WorkflowIdDep) -> RunSteps:
    """Where each step of the run stands (``done``, ``running``, ``waiting``, ``failed``,
    ``skipped``, ``pending``, ``cancelled``), how often it ran and how long it took, read from
    the run's definition snapshot and audit trail (:mod:`ruvon_server.step_states`)."""
    record = await load_record(store, workflow_id)
    graph = definition_graph(parse_definition(run_definition(record)))
    audit = await store.get_audit_log(workflow_id, limit=MAX_AUDIT)
    runs = step_states(
        record, [(node.name, node.kind.value) for node in graph.nodes], audit, dag=graph.dag
    )
    return RunSteps(
        workflow_id=record.id,
        status=record.status,
        current_step=record.current_step,
        dag=graph.dag,
        steps=[StepStateModel.model_validate(asdict(run)) for run in runs],
    )
