"""The live parts of the server, over real HTTP: Server-Sent Events of a run's status changes
received while it is driven, and Prometheus metrics at /metrics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.server.conftest import APPROVAL, LARGE, Server


async def _read_events(
    server: Server, path: str, wanted: int, ready: asyncio.Event
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30.0) as client,
        client.stream("GET", path) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
                if len(events) == wanted:
                    return events
    return events


async def test_a_client_follows_a_run_without_polling(server: Server) -> None:
    ready, ready_all = asyncio.Event(), asyncio.Event()
    everything = asyncio.create_task(_read_events(server, "/api/v1/events", 3, ready_all))
    await asyncio.wait_for(ready_all.wait(), 10)
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as api:
        started = await api.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": LARGE},
        )
        run = started.json()
        assert run["status"] == "WAITING_HUMAN"
        one = asyncio.create_task(
            _read_events(server, f"/api/v1/events?workflow_id={run['workflow_id']}", 2, ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        resumed = await api.post(
            f"/api/v1/workflow/{run['workflow_id']}/resume", json={"user_input": APPROVAL}
        )
        assert resumed.json()["status"] == "COMPLETED"
    seen = await asyncio.wait_for(everything, 20)
    assert [(e["old_status"], e["new_status"]) for e in seen] == [
        ("ACTIVE", "WAITING_HUMAN"),
        ("WAITING_HUMAN", "ACTIVE"),
        ("ACTIVE", "COMPLETED"),
    ]
    assert {e["workflow_id"] for e in seen} == {run["workflow_id"]}
    assert seen[0]["current_step"] == "Manager_Approval"
    # The run's own stream, subscribed after it started waiting, saw the rest.
    followed = await asyncio.wait_for(one, 20)
    assert [e["new_status"] for e in followed] == ["ACTIVE", "COMPLETED"]


def test_events_reject_a_malformed_id(server: Server) -> None:
    with server.client() as api:
        response = api.get("/api/v1/events", params={"workflow_id": "bad id!"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_workflow_id"


def test_prometheus_metrics_count_what_the_server_did(server: Server) -> None:
    with server.client() as api:
        run = api.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": LARGE},
        ).json()
        api.post(f"/api/v1/workflow/{run['workflow_id']}/resume", json={"user_input": APPROVAL})
        response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    started = _sample(text, 'ruvon_workflows_started_total{workflow_type="OrderApproval"}')
    completed = _sample(text, 'ruvon_workflows_completed_total{workflow_type="OrderApproval"}')
    assert started >= 1 and completed >= 1
    assert _sample(text, 'ruvon_step_duration_seconds_count{step="Manager_Approval"}') >= 1


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics:\n{text}")


def test_rewind_goes_back_to_the_step_that_ran_before(server: Server) -> None:
    with server.client() as api:
        run = api.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": LARGE},
        ).json()
        wid = run["workflow_id"]
        assert run["current_step"] == "Manager_Approval"
        rewound = api.post(f"/api/v1/workflow/{wid}/rewind")
        assert rewound.status_code == 200, rewound.text
        assert rewound.json() == {
            "status": "rewound",
            "workflow_id": wid,
            "current_step": "Check_Amount",  # the decision that led here, not the file order
            "workflow_status": "ACTIVE",  # a jump ends the wait
        }
        again = api.post(f"/api/v1/workflow/{wid}/rewind")
        assert again.json()["current_step"] == "Validate_Order"
        first = api.post(f"/api/v1/workflow/{wid}/rewind")
        assert first.status_code == 400
        assert first.json()["error"]["type"] == "cannot_rewind"
        # Driving it again runs the rewound steps: the decision routes to the manager again.
        driven = api.post(f"/api/v1/workflow/{wid}/next", json={"user_input": {}})
        assert driven.status_code == 200, driven.text
        assert driven.json()["current_step"] == "Manager_Approval"
        missing = api.post("/api/v1/workflow/no-such-run/rewind")
        assert missing.status_code == 404
