"""Figures across runs (API-12): ``GET /metrics/summary`` and ``GET /metrics/throughput``.

Both are made of :meth:`WorkflowBuilder.count_workflows` calls (indexed counts by status, type
and creation time), so they cost a few small queries and no run is loaded. The SDK filters runs
by *creation* time only, so a run counts in the window (and the throughput bucket) it was
created in, with the status it has now: "completed" in a bucket means "created then and
completed by now". That is the same as completions per bucket for runs that end within a bucket
of starting, and undercounts long-running ones in recent buckets.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon_server.deps import BuilderDep
from ruvon_server.errors import ERROR_RESPONSES, ApiError
from ruvon_server.schemas.observability import (
    MetricsSummary,
    Throughput,
    ThroughputBucket,
    TypeCounts,
)

__all__ = ["router"]

router = APIRouter(tags=["observability"], responses=ERROR_RESPONSES)

S = WorkflowStatus
GROUPS: dict[str, list[str]] = {
    "running": [S.ACTIVE.value, S.PENDING_ASYNC.value, S.PENDING_SUB_WORKFLOW.value],
    "waiting": [S.PAUSED.value, S.WAITING_HUMAN.value, S.WAITING_CHILD_HUMAN_INPUT.value],
    "completed": [S.COMPLETED.value],
    "failed": [
        S.FAILED.value,
        S.FAILED_ROLLED_BACK.value,
        S.FAILED_CHILD_WORKFLOW.value,
        S.FAILED_WORKER_CRASH.value,
    ],
    "cancelled": [S.CANCELLED.value],
}
"""Status groups of the per-type counts (WAITING_HUMAN also counts the legacy
WAITING_HUMAN_INPUT)."""

MAX_BUCKETS = 200


async def _type_counts(builder: WorkflowBuilder, workflow_type: str, since: datetime) -> TypeCounts:
    counts = {
        group: await builder.count_workflows(
            status=statuses, workflow_type=workflow_type, created_after=since
        )
        for group, statuses in GROUPS.items()
    }
    return TypeCounts(workflow_type=workflow_type, total=sum(counts.values()), **counts)


@router.get("/metrics/summary", response_model=MetricsSummary)
async def metrics_summary(
    builder: BuilderDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366, description="The window.")] = 24,
) -> MetricsSummary:
    """Runs created in the last ``hours``: how many per status, and per registered type by
    status group."""
    since = datetime.now(timezone.utc) - timedelta(hours=hours)
    by_status: dict[str, int] = {}
    for group in GROUPS.values():
        for status in group:
            by_status[status] = await builder.count_workflows(status=status, created_after=since)
    by_type = [
        await _type_counts(builder, workflow_type, since)
        for workflow_type in builder.list_workflow_types()
    ]
    total = sum(by_status.values())
    return MetricsSummary(
        hours=hours,
        since=since,
        total=total,
        by_status=by_status,
        by_type=by_type,
        other_types=max(0, total - sum(counts.total for counts in by_type)),
    )


@router.get("/metrics/throughput", response_model=Throughput)
async def metrics_throughput(
    builder: BuilderDep,
    hours: Annotated[float, Query(gt=0, le=24 * 31, description="The window.")] = 12,
    bucket_minutes: Annotated[int, Query(ge=1, le=1440, description="Bucket width.")] = 60,
) -> Throughput:
    """Runs created, completed and failed per bucket over the last ``hours`` (at most
    200 buckets), and completions per minute over the window (see ``basis``)."""
    count = math.ceil(hours * 60 / bucket_minutes)
    if count > MAX_BUCKETS:
        raise ApiError(
            422,
            "invalid_request",
            f"{hours:g} hours in buckets of {bucket_minutes} minutes make {count} buckets; "
            f"at most {MAX_BUCKETS} (use wider buckets).",
            {"buckets": count, "max_buckets": MAX_BUCKETS},
        )
    until = datetime.now(timezone.utc)
    since = until - timedelta(hours=hours)
    width = timedelta(minutes=bucket_minutes)
    buckets: list[ThroughputBucket] = []
    start = since
    while start < until:
        end = min(start + width, until)
        counts = [
            await builder.count_workflows(status=statuses, created_after=start, created_before=end)
            for statuses in (None, GROUPS["completed"], GROUPS["failed"])
        ]
        buckets.append(
            ThroughputBucket(
                start=start, end=end, created=counts[0], completed=counts[1], failed=counts[2]
            )
        )
        start = end
    completed = sum(bucket.completed for bucket in buckets)
    return Throughput(
        hours=hours,
        bucket_minutes=bucket_minutes,
        since=since,
        until=until,
        created=sum(bucket.created for bucket in buckets),
        completed=completed,
        failed=sum(bucket.failed for bucket in buckets),
        completed_per_minute=completed / (hours * 60),
        buckets=buckets,
    )
