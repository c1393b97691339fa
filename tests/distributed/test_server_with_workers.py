"""The REST server in a Celery deployment: a run started over HTTP sends its ASYNC steps to the
workers (RUVON_EXECUTION_PROVIDER=celery) and completes there; the server reads it back."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.server.conftest import start_server

from .conftest import BROKER, Deployment, eventually


async def test_a_run_started_over_http_completes_on_the_workers(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    server = await asyncio.to_thread(
        start_server,
        deployment.root,
        deployment.database_url,
        deployment.root / "server.log",
        RUVON_EXECUTION_PROVIDER="celery",
        CELERY_BROKER_URL=BROKER,
        RUVON_CELERY_QUEUE=deployment.queue,
        RUVON_TEST_RECORD=str(deployment.record),
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as api:
            started = await api.post(
                "/api/v1/workflow/start",
                json={"workflow_type": "AsyncOrder", "initial_data": {"order_id": "H-1"}},
            )
            assert started.status_code == 201, started.text
            run = started.json()
            assert run["status"] == "PENDING_ASYNC"  # Charge went to the broker

            async def completed() -> bool:
                response = await api.get(f"/api/v1/workflow/{run['workflow_id']}/status")
                return bool(response.json()["status"] == "COMPLETED")

            await eventually(completed, what=server.output())
    finally:
        server.stop()
    steps = [r for r in deployment.runs() if r["workflow_id"] == run["workflow_id"]]
    assert Counter(r["step"] for r in steps) == Counter(
        ["Validate", "Charge", "Ship", "Notify", "Finish"]
    )
    assert {r["pid"] for r in steps if r["step"] == "Charge"} == {worker.process.pid}
