"""``POST /api/v1/workflow/{id}/rewind`` (API-09): move a run back one step.

The run's pointer goes back to the step that ran before the current one, in the order steps
ran (``STEP_EXECUTED`` entries of its audit log; for a step that ran already, before its last
run), with the SDK's
``Workflow.jump_to_step`` (an audited jump, allowed while the run is ACTIVE, waiting or
FAILED, not while it rolls back); the next ``next`` runs that step again. The state keeps what
the steps wrote: rewinding does not undo a step (a saga's compensation does that).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from ruvon_server.deps import BuilderDep, PrincipalDep, StoreDep, WorkflowIdDep
from ruvon_server.errors import ERROR_RESPONSES, ApiError

__all__ = ["RewindResponse", "router"]

router = APIRouter(tags=["workflows"], responses=ERROR_RESPONSES)


class RewindResponse(BaseModel):
    """The run after the rewind."""

    status: Literal["rewound"] = "rewound"
    workflow_id: str
    current_step: str
    workflow_status: str


@router.post("/workflow/{workflow_id}/rewind", response_model=RewindResponse)
async def rewind(
    workflow_id: WorkflowIdDep, builder: BuilderDep, store: StoreDep, who: PrincipalDep
) -> RewindResponse:
    """Move the run back to the step that ran before its current one (see the module). 400
    when no step has run yet; 409 when its status does not allow it (it ended, it rolls
    back)."""
    workflow = await builder.load_workflow(workflow_id)
    executed = await store.get_audit_log(
        workflow_id, event_type="STEP_EXECUTED", limit=_AUDIT_LIMIT
    )
    ran = [event.step_name for event in executed if event.step_name is not None]
    current = workflow.current_step_name
    if current in ran:  # it ran before (a rewind came back to it): go back from its last run
        ran = ran[: len(ran) - 1 - ran[::-1].index(current)]
    earlier = ran
    if not earlier:
        raise ApiError(
            400,
            "cannot_rewind",
            f"Workflow {workflow_id} is at its first step: no step ran before it.",
        )
    target = earlier[-1]
    assert target is not None
    await workflow.jump_to_step(target, actor=who.user_id)
    return RewindResponse(
        workflow_id=workflow.id, current_step=target, workflow_status=workflow.status.value
    )


_AUDIT_LIMIT = 100_000
"""Enough executed steps to find the last one of any run."""
