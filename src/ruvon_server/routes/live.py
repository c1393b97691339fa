"""``GET /api/v1/events``: the status changes of runs as Server-Sent Events, and
``GET /metrics``: Prometheus metrics. Both come from observers the app gives its builder
(:func:`ruvon_server.app.create_app`), so they cover the runs this server drives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ruvon.implementations.observability.events import WorkflowEvent, WorkflowEventStream
from ruvon_server.errors import ERROR_RESPONSES
from ruvon_server.inputs import check_workflow_id

__all__ = ["KEEPALIVE_SECONDS", "events_router", "prometheus_router"]

events_router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)
prometheus_router = APIRouter(tags=["metrics"])

KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""


def _frame(event: WorkflowEvent) -> str:
    return f"id: {event.id}\nevent: status\ndata: {json.dumps(event.to_dict())}\n\n"


async def _frames(
    request: Request, stream: WorkflowEventStream, workflow_id: str | None
) -> AsyncIterator[str]:
    async with stream.subscribe(workflow_id) as events:
        yield ": connected\n\n"  # the client knows it is subscribed before anything happens
        pending = asyncio.ensure_future(anext(events))
        try:
            while not await request.is_disconnected():
                done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                yield _frame(pending.result())
                pending = asyncio.ensure_future(anext(events))
        finally:
            pending.cancel()


@events_router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An event stream"},
    },
)
async def events(
    request: Request,
    workflow_id: Annotated[
        str | None, Query(description="Only this run's events (default: every run's).")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events, one ``status`` event per committed status change of a run this
    server drives: ``data`` is ``{"id", "workflow_id", "old_status", "new_status",
    "current_step", "at", "dropped"}`` (``dropped``: events this client missed because it read
    too slowly). A comment line every 15 s keeps the connection open."""
    if workflow_id is not None:
        check_workflow_id(workflow_id)
    stream: WorkflowEventStream = request.app.state.events
    return StreamingResponse(
        _frames(request, stream, workflow_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@prometheus_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics of the runs this server drives (``PrometheusObserver``): workflows
    started/completed/failed by type, status changes, steps and their durations. Open, like
    ``/health``, for the scraper."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
