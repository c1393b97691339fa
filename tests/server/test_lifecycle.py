"""Runs driven through the real server over HTTP, on SQLite and PostgreSQL: the order's life
cycle, retry after a failure, cancel, a run started by the SDK and resumed through the server,
two requests driving one run at once, idempotent starts."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ruvon import WorkflowBuilder
from ruvon.settings import persistence_from_url
from tests.server.conftest import APPROVAL, LARGE, SMALL, Server, error_of


def start(api: httpx.Client, workflow_type: str, data: dict[str, Any], **extra: Any) -> Any:
    response = api.post(
        "/api/v1/workflow/start",
        json={"workflow_type": workflow_type, "initial_data": data, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


def audit_events(api: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/workflow/{workflow_id}/audit")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def test_order_waits_for_a_manager_then_completes(api: httpx.Client) -> None:
    run = start(api, "OrderApproval", LARGE)
    assert run["status"] == "WAITING_HUMAN"
    assert run["current_step"] == "Manager_Approval"
    assert run["state"]["total"] == 2900.0
    assert run["error"] is None
    wid = run["workflow_id"]

    listed = api.get("/api/v1/workflows", params={"status": "WAITING_HUMAN", "limit": 1000})
    assert listed.status_code == 200
    page = listed.json()
    assert wid in [w["workflow_id"] for w in page["workflows"]]
    assert page["total"] >= 1
    assert {w["status"] for w in page["workflows"]} == {"WAITING_HUMAN"}

    detail = api.get(f"/api/v1/workflow/{wid}/status").json()
    assert detail == api.get(f"/api/v1/workflows/{wid}").json()
    assert detail["owner_id"] == "ann"
    assert detail["child_ids"] == []
    assert detail["parent_execution_id"] is None
    assert detail["created_at"] and detail["updated_at"] and detail["completed_at"] is None

    info = api.get(f"/api/v1/workflow/{wid}/current_step_info").json()
    assert info["name"] == "Manager_Approval"
    assert info["type"] == "HUMAN_IN_LOOP"
    assert info["waiting"] is True
    assert info["input_schema"]["title"] == "ApprovalInput"
    assert set(info["input_schema"]["required"]) == {"approved", "approver"}

    refused = api.post(f"/api/v1/workflow/{wid}/resume", json={"user_input": {"approved": True}})
    error = error_of(refused, 422, "invalid_input")
    assert error["details"]["step"] == "Manager_Approval"
    assert [e["field"] for e in error["details"]["errors"]] == ["approver"]
    unchanged = api.get(f"/api/v1/workflow/{wid}/status").json()
    assert unchanged == detail  # nothing changed, not even the row version

    done = api.post(f"/api/v1/workflow/{wid}/resume", json={"user_input": APPROVAL})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "COMPLETED"
    assert body["current_step"] is None
    assert body["state"]["outcome"] == "fulfilled (2900.00 approved by mia)"
    assert body["result"] == {"outcome": "fulfilled (2900.00 approved by mia)"}

    completed = api.get("/api/v1/workflows", params={"status": "COMPLETED", "limit": 1000})
    assert wid in [w["workflow_id"] for w in completed.json()["workflows"]]

    entries = audit_events(api, wid)
    executed = [e["step_name"] for e in entries if e["event_type"] == "STEP_EXECUTED"]
    assert executed == ["Validate_Order", "Check_Amount", "Manager_Approval", "Complete_Order"]
    types = [e["event_type"] for e in entries]
    assert types[0] == "WORKFLOW_STARTED" and types[-1] == "WORKFLOW_COMPLETED"
    assert "WORKFLOW_PAUSED" in types and "WORKFLOW_RESUMED" in types
    assert entries[0]["user_id"] == "ann"  # the owner
    approval = next(e for e in entries if e["step_name"] == "Manager_Approval" and e["data"])
    assert approval["user_id"] == "ann"

    logs = api.get(f"/api/v1/workflow/{wid}/logs").json()
    logged_steps = {line["step_name"] for line in logs if line["step_name"]}
    assert set(executed) <= logged_steps
    only = api.get(f"/api/v1/workflow/{wid}/logs", params={"step": "Complete_Order"}).json()
    assert only and {line["step_name"] for line in only} == {"Complete_Order"}
    assert api.get(f"/api/v1/workflow/{wid}/logs", params={"level": "ERROR"}).json() == []

    metrics = api.get(f"/api/v1/workflow/{wid}/metrics").json()
    assert {p["step_name"] for p in metrics if p["metric_name"] == "step_duration_ms"} >= set(
        executed
    )

    ended = api.get(f"/api/v1/workflow/{wid}/current_step_info").json()
    assert ended["name"] is None and ended["status"] == "COMPLETED"


def test_small_order_completes_in_the_start_request(api: httpx.Client) -> None:
    run = start(api, "OrderApproval", SMALL)
    assert run["status"] == "COMPLETED"
    assert run["state"]["approver"] == "auto"


def test_retry_from_a_step_after_a_failure(api: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "upstream-down"
    marker.touch()
    run = start(api, "Flaky", {"fail_marker": str(marker)})
    # The step's failure is the run's outcome, reported in the body of a successful request.
    assert run["status"] == "FAILED"
    assert run["current_step"] == "Fetch"
    assert run["error"]["step"] == "Fetch"
    assert run["error"]["type"] == "RuntimeError"
    assert "upstream unavailable" in run["error"]["message"]
    wid = run["workflow_id"]
    assert (
        api.get(f"/api/v1/workflow/{wid}/status").json()["error_message"].startswith("RuntimeError")
    )

    # Still failing: the retry runs the step again, which fails again.
    again = api.post(f"/api/v1/workflow/{wid}/retry", json={})
    assert again.status_code == 200 and again.json()["status"] == "FAILED"

    marker.unlink()
    retried = api.post(f"/api/v1/workflow/{wid}/retry", json={"from_step": "Prepare"})
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["status"] == "COMPLETED"
    assert body["error"] is None
    assert body["state"]["prepared"] == 2  # Prepare ran again
    assert body["state"]["fetched"] and body["state"]["done"]

    types = [e["event_type"] for e in audit_events(api, wid)]
    assert types.count("WORKFLOW_RETRIED") == 2
    assert types.count("STEP_FAILED") == 2
    errors = api.get(f"/api/v1/workflow/{wid}/logs", params={"level": "ERROR"}).json()
    assert len(errors) == 2 and all(line["step_name"] == "Fetch" for line in errors)


def test_retry_without_running_then_cancel(api: httpx.Client) -> None:
    failed = start(api, "OrderApproval", {**SMALL, "items": []})
    assert failed["status"] == "FAILED" and failed["error"]["step"] == "Validate_Order"
    wid = failed["workflow_id"]
    ready = api.post(f"/api/v1/workflow/{wid}/retry", json={"run": False})
    assert ready.status_code == 200
    assert ready.json()["status"] == "ACTIVE"
    assert ready.json()["current_step"] == "Validate_Order"

    cancelled = api.post(f"/api/v1/workflow/{wid}/cancel", json={"reason": "duplicate order"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"


def test_cancel_a_waiting_run(api: httpx.Client) -> None:
    wid = start(api, "OrderApproval", LARGE)["workflow_id"]
    response = api.post(f"/api/v1/workflow/{wid}/cancel", json={"reason": "customer withdrew"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    detail = api.get(f"/api/v1/workflows/{wid}").json()
    assert detail["status"] == "CANCELLED"
    assert detail["metadata"]["cancellation_reason"] == "customer withdrew"
    cancel = next(e for e in audit_events(api, wid) if e["event_type"] == "WORKFLOW_CANCELLED")
    assert cancel["data"] == {"reason": "customer withdrew"}
    assert cancel["user_id"] == "ann"
    error_of(api.post(f"/api/v1/workflow/{wid}/cancel"), 409, "wrong_status")


async def test_a_run_started_by_the_sdk_is_resumed_through_the_server(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(server.project))
    store = persistence_from_url(server.database_url)
    builder = WorkflowBuilder(config_dir=server.project / "config", persistence_provider=store)
    try:
        workflow = await builder.start_workflow("OrderApproval", LARGE, owner_id="sdk-app")
        assert workflow.status == "WAITING_HUMAN"
    finally:
        await builder.close()
        await store.close()

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        seen = (await client.get(f"/api/v1/workflow/{workflow.id}/status")).json()
        assert seen["owner_id"] == "sdk-app" and seen["status"] == "WAITING_HUMAN"
        resumed = await client.post(
            f"/api/v1/workflow/{workflow.id}/next", json={"input_data": APPROVAL}
        )
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "COMPLETED"


async def test_two_requests_driving_one_run_at_once(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        started = await client.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "Slow", "initial_data": {"seconds": 1.0}},
        )
        run = started.json()
        assert run["status"] == "ACTIVE" and run["current_step"] == "Sleep"
        url = f"/api/v1/workflow/{run['workflow_id']}/next"
        first, second = await asyncio.gather(client.post(url), client.post(url))
        outcomes = sorted([first, second], key=lambda response: response.status_code)
        winner, loser = outcomes
        assert winner.status_code == 200, winner.text
        assert winner.json()["state"]["slept"] is True
        assert winner.json()["current_step"] == "Done"
        error = error_of(loser, 409, loser.json()["error"]["type"])
        assert error["type"] in {"workflow_busy", "concurrency_conflict"}
        # The step ran once; the run goes on normally.
        events = (await client.get(f"/api/v1/workflow/{run['workflow_id']}/audit")).json()
        assert [e["step_name"] for e in events if e["event_type"] == "STEP_EXECUTED"] == [
            "Prepare",
            "Sleep",
        ]
        last = await client.post(url)
        assert last.json()["status"] == "COMPLETED"


def test_idempotent_start(api: httpx.Client) -> None:
    key = f"order-{uuid.uuid4()}"
    first = start(api, "OrderApproval", LARGE, idempotency_key=key)
    again = start(api, "OrderApproval", LARGE, idempotency_key=key)
    assert again["workflow_id"] == first["workflow_id"]
    other = api.post(
        "/api/v1/workflow/start",
        json={"workflow_type": "OrderApproval", "initial_data": SMALL, "idempotency_key": key},
    )
    error = error_of(other, 409, "idempotency_conflict")
    assert error["details"]["workflow_id"] == first["workflow_id"]
