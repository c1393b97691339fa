"""A custom router (RUVON_CUSTOM_ROUTERS=server_flows.routers:router)."""

from __future__ import annotations

from fastapi import APIRouter

from ruvon_server.deps import BuilderDep

router = APIRouter(prefix="/custom")


@router.get("/types")
async def types(builder: BuilderDep) -> dict[str, list[str]]:
    return {"types": builder.list_workflow_types()}


not_a_router = 42
