"""What routes get from the app: the one :class:`~ruvon.WorkflowBuilder` the lifespan built,
its store, the caller, and a checked run id. Custom routers (``RUVON_CUSTOM_ROUTERS``) may use
them too::

    from ruvon_server.deps import BuilderDep

    @router.get("/orders/waiting")
    async def waiting(builder: BuilderDep) -> int:
        return await builder.count_workflows(status="WAITING_HUMAN")
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from ruvon import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord
from ruvon_server.auth import Principal, principal
from ruvon_server.errors import ApiError, not_found
from ruvon_server.inputs import check_workflow_id

__all__ = [
    "BuilderDep",
    "PrincipalDep",
    "StoreDep",
    "WorkflowIdDep",
    "get_builder",
    "get_store",
    "load_record",
]


def get_builder(request: Request) -> WorkflowBuilder:
    """The app's builder (made at start-up by the lifespan)."""
    builder = getattr(request.app.state, "builder", None)
    if not isinstance(builder, WorkflowBuilder):
        raise ApiError(503, "not_ready", "The server is starting or stopping; try again.")
    return builder


def get_store(builder: Annotated[WorkflowBuilder, Depends(get_builder)]) -> PersistenceProvider:
    """The builder's store, for the reads the builder does not wrap (audit, logs, metrics,
    schedules), as the CLI reads them."""
    store = builder.persistence_provider
    if store is None:  # the lifespan always gives the builder one
        raise ApiError(503, "not_ready", "No database is configured.")
    return store


def workflow_id_path(
    workflow_id: Annotated[
        str,
        Path(
            description="A run's id (a UUID for runs the server starts; letters, digits "
            "and ._:@- otherwise, at most 200 characters).",
        ),
    ],
) -> str:
    return check_workflow_id(workflow_id)


BuilderDep = Annotated[WorkflowBuilder, Depends(get_builder)]
StoreDep = Annotated[PersistenceProvider, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(principal)]
WorkflowIdDep = Annotated[str, Depends(workflow_id_path)]


async def load_record(store: PersistenceProvider, workflow_id: str) -> WorkflowRecord:
    """The stored run (nothing compiled), or a 404."""
    record = await store.load_workflow(workflow_id)
    if record is None:
        raise not_found(workflow_id)
    return record
