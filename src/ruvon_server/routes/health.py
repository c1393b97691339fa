"""``GET /health`` (API-01): open to everyone, for load balancers and orchestrators."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ruvon import __version__
from ruvon.errors import PersistenceError
from ruvon_server.schemas.common import HealthResponse

__all__ = ["router"]

logger = logging.getLogger("ruvon_server")

router = APIRouter(tags=["health"])

_PROBE_ID = "00000000-0000-0000-0000-000000000000"
"""A run id nobody has: reading it is one indexed lookup, a round trip to the database."""


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "The database is unreachable"}},
)
async def health(request: Request) -> HealthResponse | JSONResponse:
    """Whether the server runs and its database answers (one read of a run that does not
    exist). 503 with the reason when the database does not answer."""
    builder = getattr(request.app.state, "builder", None)
    store = getattr(builder, "persistence_provider", None)
    try:
        if store is None:
            raise PersistenceError("the server has not opened its database yet")
        await store.load_workflow(_PROBE_ID)
    except PersistenceError as exc:
        logger.warning("Health check: database unreachable: %s", exc)
        body = HealthResponse(
            status="unhealthy", version=__version__, database="unreachable", detail=str(exc)
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return HealthResponse(status="healthy", version=__version__, database="reachable")
