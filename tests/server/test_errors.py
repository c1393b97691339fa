"""Every error status the API answers with, provoked once each over real HTTP, and the one
error body: ``{"error": {"type", "message", "details"?}}``. Nothing a client sends is a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.conftest import APPROVAL, LARGE, MISSING_ID, SMALL, error_of

START = "/api/v1/workflow/start"


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def started(api: httpx.Client, data: dict[str, Any]) -> str:
    response = api.post(START, json={"workflow_type": "OrderApproval", "initial_data": data})
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["workflow_id"]
    return workflow_id


# -- 400 ---------------------------------------------------------------------------------


def test_unknown_workflow_type_on_start(api: httpx.Client) -> None:
    response = api.post(START, json={"workflow_type": "NoSuchType", "initial_data": {}})
    error = error_of(response, 400, "unknown_workflow_type")
    assert "NoSuchType" in error["message"]
    assert "OrderApproval" in error["details"]["known"]


@pytest.mark.parametrize("bad", ["not%20an%20id", "x" * 201, "%00abc", "-leading-dash"])
def test_malformed_workflow_id(api: httpx.Client, bad: str) -> None:
    for method, path in (("GET", "status"), ("POST", "next"), ("GET", "audit")):
        response = api.request(method, f"/api/v1/workflow/{bad}/{path}")
        error_of(response, 400, "invalid_workflow_id")


def test_retry_from_an_unknown_step(api: httpx.Client) -> None:
    workflow_id = started(api, {**SMALL, "items": []})
    response = api.post(f"/api/v1/workflow/{workflow_id}/retry", json={"from_step": "Nope"})
    error = error_of(response, 400, "unknown_step")
    assert "Validate_Order" in error["details"]["steps"]


# -- 404 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/workflow/{id}/status"),
        ("GET", "/api/v1/workflows/{id}"),
        ("POST", "/api/v1/workflow/{id}/next"),
        ("POST", "/api/v1/workflow/{id}/resume"),
        ("POST", "/api/v1/workflow/{id}/retry"),
        ("POST", "/api/v1/workflow/{id}/cancel"),
        ("GET", "/api/v1/workflow/{id}/current_step_info"),
        ("GET", "/api/v1/workflow/{id}/graph"),
        ("GET", "/api/v1/workflow/{id}/logs"),
        ("GET", "/api/v1/workflow/{id}/metrics"),
        ("GET", "/api/v1/workflow/{id}/audit"),
    ],
)
def test_unknown_workflow_id(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path.format(id=MISSING_ID))
    error = error_of(response, 404, "workflow_not_found")
    assert MISSING_ID in error["message"]


def test_other_things_not_found(api: httpx.Client) -> None:
    error_of(api.get("/api/v1/workflows/types/NoSuchType/graph"), 404, "unknown_workflow_type")
    error_of(api.get("/api/v1/schedules/no-such-schedule"), 404, "schedule_not_found")
    error_of(api.post("/api/v1/schedules/no-such-schedule/pause"), 404, "schedule_not_found")
    error_of(api.delete("/api/v1/schedules/no-such-schedule"), 404, "schedule_not_found")
    error_of(api.get("/api/v1/no-such-endpoint"), 404, "not_found")
    error_of(api.delete("/api/v1/workflow/start"), 405, "method_not_allowed")


# -- 409 ---------------------------------------------------------------------------------


def test_wrong_status_for_the_action(api: httpx.Client) -> None:
    completed = started(api, SMALL)
    for action, body in (
        ("resume", {"user_input": APPROVAL}),
        ("next", {}),
        ("retry", {}),
        ("cancel", {"reason": "too late"}),
    ):
        response = api.post(f"/api/v1/workflow/{completed}/{action}", json=body)
        error = error_of(response, 409, "wrong_status")
        assert "COMPLETED" in error["message"], action

    waiting = started(api, LARGE)
    error_of(api.post(f"/api/v1/workflow/{waiting}/retry"), 409, "wrong_status")
    failed = started(api, {**SMALL, "items": []})
    error_of(api.post(f"/api/v1/workflow/{failed}/resume", json={}), 409, "wrong_status")


# -- 422 ---------------------------------------------------------------------------------


def test_invalid_initial_data(api: httpx.Client) -> None:
    data = {"order_id": "X", "items": [{"sku": "a", "quantity": 0, "unit_price": 1}]}
    response = api.post(START, json={"workflow_type": "OrderApproval", "initial_data": data})
    error = error_of(response, 422, "invalid_initial_data")
    text = " ".join(error["details"]["errors"])
    assert "customer" in text and "quantity" in text


def test_invalid_step_input_changes_nothing(api: httpx.Client) -> None:
    workflow_id = started(api, LARGE)
    before = api.get(f"/api/v1/workflow/{workflow_id}/status").json()
    response = api.post(
        f"/api/v1/workflow/{workflow_id}/next",
        json={"user_input": {"approved": "perhaps", "approver": ""}},
    )
    error = error_of(response, 422, "invalid_input")
    fields = {e["field"] for e in error["details"]["errors"]}
    assert fields == {"approved", "approver"}
    assert api.get(f"/api/v1/workflow/{workflow_id}/status").json() == before


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"{not json", "invalid_json"),
        (b'{"workflow_type": "OrderApproval", "initial_data": ', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "invalid_request"),
        (b'{"initial_data": {}}', "invalid_request"),
        (b'{"workflow_type": "OrderApproval", "initial_data": []}', "invalid_request"),
        (b'{"workflow_type": "OrderApproval", "surprise": 1}', "invalid_request"),
        (b'{"workflow_type": "OrderApproval", "priority": -1}', "invalid_request"),
    ],
)
def test_invalid_body(api: httpx.Client, content: bytes, kind: str) -> None:
    response = api.post(START, content=content, headers={"Content-Type": "application/json"})
    error_of(response, 422, kind)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\u0000b", "NUL"),
        (2**70, "64-bit"),
        ({"deep": _nested(70)}, "nested"),
    ],
)
def test_values_no_store_can_keep(api: httpx.Client, value: Any, reason: str) -> None:
    data = {**LARGE, "order_id": value} if not isinstance(value, dict) else {**LARGE, **value}
    response = api.post(START, json={"workflow_type": "OrderApproval", "initial_data": data})
    error = error_of(response, 422, "unstorable_value")
    assert reason in error["message"]
    workflow_id = started(api, LARGE)
    response = api.post(
        f"/api/v1/workflow/{workflow_id}/next", json={"user_input": {"approver": value}}
    )
    error_of(response, 422, "unstorable_value")


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 100000},
        {"offset": -1},
        {"status": "RUNNING"},
        {"created_after": "yesterday"},
        {"type": "a\u0000b"},
    ],
)
def test_invalid_list_query(api: httpx.Client, query: dict[str, Any]) -> None:
    error_of(api.get("/api/v1/workflows", params=query), 422, "invalid_request")


def test_invalid_queries_elsewhere(api: httpx.Client) -> None:
    workflow_id = started(api, SMALL)
    error_of(
        api.get(f"/api/v1/workflow/{workflow_id}/graph", params={"format": "svg"}),
        422,
        "invalid_request",
    )
    error_of(
        api.get(f"/api/v1/workflow/{workflow_id}/logs", params={"level": "LOUD"}),
        422,
        "invalid_request",
    )
    error_of(
        api.get(f"/api/v1/workflow/{workflow_id}/logs", params={"step": "x\u0000"}),
        422,
        "invalid_request",
    )
    error_of(
        api.get("/api/v1/metrics/throughput", params={"hours": 100, "bucket_minutes": 1}),
        422,
        "invalid_request",
    )
    error_of(api.get("/api/v1/metrics/summary", params={"hours": "nan"}), 422, "invalid_request")


def test_invalid_schedules(api: httpx.Client) -> None:
    schedule = {
        "schedule_name": "bad-one",
        "workflow_type": "OrderApproval",
        "cron_expression": "0 0 30 2 *",
        "initial_data": SMALL,
    }
    error_of(api.post("/api/v1/schedules", json=schedule), 422, "invalid_cron_expression")
    no_data = {**schedule, "cron_expression": "@daily", "initial_data": {}}
    error = error_of(api.post("/api/v1/schedules", json=no_data), 422, "invalid_initial_data")
    assert {e["field"] for e in error["details"]["errors"]} >= {"order_id", "customer"}
    error_of(
        api.post("/api/v1/schedules", json={**schedule, "workflow_type": "Nope"}),
        400,
        "unknown_workflow_type",
    )
    assert api.get("/api/v1/schedules/bad-one").status_code == 404
