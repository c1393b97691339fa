"""The workflow types the server knows (API-02's REC): ``GET /workflows/types`` (alias
``/workflow-types``), ``GET /workflows/types/{type}`` (with its state model's JSON Schema) and
``GET /workflows/types/{type}/graph``. Registered before the runs' router, so
``/workflows/types`` is not read as a run id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import PlainTextResponse

from ruvon import WorkflowBuilder
from ruvon.errors import DefinitionError, UnknownWorkflowTypeError
from ruvon_server.deps import BuilderDep
from ruvon_server.errors import ERROR_RESPONSES, ApiError
from ruvon_server.graphs import GRAPH_RESPONSES, FormatQuery, GraphFormat, graph_response
from ruvon_server.inputs import check_text
from ruvon_server.schemas.graph import GraphModel
from ruvon_server.schemas.workflows import WorkflowTypeDetail, WorkflowTypeInfo, WorkflowTypeList

__all__ = ["router"]

router = APIRouter(tags=["definitions"], responses=ERROR_RESPONSES)


def _type_info(builder: WorkflowBuilder, workflow_type: str) -> WorkflowTypeInfo:
    entry = builder.registry.get(workflow_type, {})
    description = entry.get("description")
    info = WorkflowTypeInfo(
        workflow_type=workflow_type,
        description=description if isinstance(description, str) else None,
    )
    try:
        info.version = builder.get_current_version(workflow_type)
        if info.description is None:
            described = builder.get_workflow_config(workflow_type).get("description")
            info.description = described if isinstance(described, str) else None
    except (DefinitionError, UnknownWorkflowTypeError) as exc:
        info.problem = str(exc)
    return info


def _known(builder: WorkflowBuilder, workflow_type: str) -> None:
    check_text(workflow_type, "workflow_type")
    if workflow_type not in builder.list_workflow_types():
        raise ApiError(
            404,
            "unknown_workflow_type",
            f"Unknown workflow type '{workflow_type[:200]}'.",
            {"known": builder.list_workflow_types()},
        )


@router.get("/workflows/types", response_model=WorkflowTypeList)
@router.get("/workflow-types", response_model=WorkflowTypeList, include_in_schema=False)
async def list_types(builder: BuilderDep) -> WorkflowTypeList:
    """The registered workflow types, with their description and the current file's
    ``workflow_version``. A type whose definition does not load says why in ``problem``."""
    return WorkflowTypeList(
        types=[_type_info(builder, name) for name in builder.list_workflow_types()]
    )


@router.get("/workflows/types/{workflow_type}", response_model=WorkflowTypeDetail)
async def type_detail(
    builder: BuilderDep,
    workflow_type: Annotated[str, Path(description="A registered workflow type.")],
) -> WorkflowTypeDetail:
    """One type: its description, version, how many steps, and the JSON Schema of its state
    model (what ``initial_data`` of a start is validated by), e.g. to build a start form."""
    _known(builder, workflow_type)
    detail = WorkflowTypeDetail.model_validate(_type_info(builder, workflow_type).model_dump())
    if detail.problem is None:
        try:
            detail.state_schema = builder.get_state_model_class(workflow_type).model_json_schema()
            detail.step_count = len(builder.get_workflow_config(workflow_type).get("steps") or [])
        except (DefinitionError, ImportError) as exc:
            detail.problem = str(exc)
    return detail


@router.get(
    "/workflows/types/{workflow_type}/graph",
    response_model=GraphModel,
    responses=GRAPH_RESPONSES,
)
async def type_graph(
    builder: BuilderDep,
    workflow_type: Annotated[str, Path(description="A registered workflow type.")],
    how: FormatQuery = GraphFormat.json,
) -> GraphModel | PlainTextResponse:
    """The steps of a type's current definition and where each can lead."""
    check_text(workflow_type, "workflow_type")
    try:
        config = builder.get_workflow_config(workflow_type)
    except UnknownWorkflowTypeError as exc:
        raise ApiError(
            404, "unknown_workflow_type", str(exc), {"known": builder.list_workflow_types()}
        ) from exc
    return graph_response(config, how)
