"""The same workflow files and step code give the same final state on the in-process, the
thread-pool and the Celery execution providers."""

from __future__ import annotations

from typing import Any

import pytest

from ruvon.builder import WorkflowBuilder
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.providers.execution import ExecutionProvider

from .conftest import Deployment, eventually

ORDER = {"order_id": "S-1", "amount": 20.0}
FINAL = {
    "AsyncOrder": {
        **ORDER,
        "work_seconds": 0.0,
        "validated": True,
        "charged_amount": 22.0,
        "shipped": True,
        "notified": True,
        "done": True,
        "parts": {},
    },
    "ParallelOrder": {
        **ORDER,
        "work_seconds": 0.0,
        "validated": True,
        "charged_amount": None,
        "shipped": False,
        "notified": False,
        "done": True,
        "parts": {"Pick": 4, "Wrap": 4, "Label": 5, "Weigh": 5},
    },
}


def _builder(deployment: Deployment, provider: str) -> WorkflowBuilder:
    if provider == "celery":
        return deployment.builder()
    execution: ExecutionProvider = (
        SyncExecutionProvider() if provider == "sync" else ThreadPoolExecutionProvider()
    )
    return WorkflowBuilder(
        config_dir=deployment.root / "config",
        persistence_provider=PostgresPersistenceProvider(
            deployment.base_url, schema=deployment.schema, pool_max_size=4
        ),
        execution_provider=execution,
    )


@pytest.mark.parametrize("provider", ["sync", "thread_pool", "celery"])
@pytest.mark.parametrize("workflow_type", sorted(FINAL))
async def test_the_same_final_state_on_every_provider(
    deployment: Deployment, provider: str, workflow_type: str
) -> None:
    if provider == "celery":
        deployment.start_worker()
    async with _builder(deployment, provider) as builder:
        workflow = await builder.start_workflow(workflow_type, dict(ORDER))
        store = builder.persistence_provider
        assert store is not None

        async def final() -> dict[str, Any] | None:
            record = await store.load_workflow(workflow.id)
            assert record is not None
            return dict(record.state) if record.status == "COMPLETED" else None

        state = await eventually(final, what=f"{workflow_type} to complete on {provider}")
    assert state == FINAL[workflow_type]
