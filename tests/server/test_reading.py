"""Reading through the real server: types, paging, graphs, metrics, schedules, health and the
OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.conftest import LARGE, SMALL, error_of


def start(api: httpx.Client, workflow_type: str, data: dict[str, Any]) -> dict[str, Any]:
    response = api.post(
        "/api/v1/workflow/start", json={"workflow_type": workflow_type, "initial_data": data}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_health(api: httpx.Client) -> None:
    body = api.get("/health").json()
    assert body["status"] == "healthy"
    assert body["database"] == "reachable"


def test_workflow_types(api: httpx.Client) -> None:
    response = api.get("/api/v1/workflows/types")
    assert response.status_code == 200
    types = {t["workflow_type"]: t for t in response.json()["types"]}
    assert set(types) == {"OrderApproval", "Flaky", "Slow"}
    assert types["OrderApproval"]["version"] == "1.0"
    assert types["OrderApproval"]["description"].startswith("Validate an order")
    assert types["Flaky"]["version"] == "2"
    assert all(t["problem"] is None for t in types.values())
    assert api.get("/api/v1/workflow-types").json() == response.json()


def test_paging_with_total(api: httpx.Client) -> None:
    owner = "pager"
    for _ in range(5):
        response = api.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": SMALL},
            headers={"X-User-ID": owner},
        )
        assert response.status_code == 201
    first = api.get("/api/v1/workflows", params={"owner": owner, "limit": 2}).json()
    second = api.get("/api/v1/workflows", params={"owner": owner, "limit": 2, "offset": 2}).json()
    last = api.get("/api/v1/workflows", params={"owner": owner, "limit": 2, "offset": 4}).json()
    assert first["total"] == second["total"] == last["total"] == 5
    ids = [w["workflow_id"] for page in (first, second, last) for w in page["workflows"]]
    assert len(ids) == len(set(ids)) == 5
    assert all(w["state"] is None for w in first["workflows"])
    with_state = api.get(
        "/api/v1/workflows",
        params={"owner": owner, "type": "OrderApproval", "status": "completed,failed",
                "include_state": "true", "limit": 1},
    ).json()  # fmt: skip
    assert with_state["total"] == 5
    assert with_state["workflows"][0]["state"]["customer"] == "ada"
    none = api.get("/api/v1/workflows", params={"owner": owner, "type": "Slow"}).json()
    assert none == {"total": 0, "limit": 50, "offset": 0, "workflows": []}


def test_time_filters_at_the_ends_of_the_calendar(api: httpx.Client) -> None:
    """Times whose UTC falls outside years 1-9999 are the earliest and latest there are (they
    were a 500: the conversion to UTC overflowed)."""
    owner = "calendar"
    started = api.post(
        "/api/v1/workflow/start",
        json={"workflow_type": "OrderApproval", "initial_data": SMALL},
        headers={"X-User-ID": owner},
    )
    assert started.status_code == 201, started.text
    everything = {
        "created_after": "0001-01-01T00:00:00+01:00",
        "created_before": "9999-12-31T23:59:59-05:00",
    }
    for params, total in (
        (everything, 1),
        ({"created_after": "9999-12-31T23:59:59-05:00"}, 0),
        ({"created_before": "0001-01-01T00:00:00+01:00"}, 0),
    ):
        response = api.get("/api/v1/workflows", params={"owner": owner, **params})
        assert response.status_code == 200, response.text
        assert response.json()["total"] == total, params


def test_graphs(api: httpx.Client) -> None:
    typed = api.get("/api/v1/workflows/types/OrderApproval/graph")
    assert typed.status_code == 200
    graph = typed.json()
    assert graph["workflow_type"] == "OrderApproval" and graph["dag"] is False
    assert [node["name"] for node in graph["nodes"]][:2] == ["Validate_Order", "Check_Amount"]
    routes = {
        (e["source"], e["target"], e["label"]) for e in graph["edges"] if e["kind"] == "route"
    }
    assert ("Check_Amount", "Manager_Approval", "state.total > 1000") in routes
    assert ("Check_Amount", "Auto_Approve", "default") in routes

    run = start(api, "OrderApproval", LARGE)
    own = api.get(f"/api/v1/workflow/{run['workflow_id']}/graph")
    assert own.json() == graph  # the run's snapshot is the current file

    mermaid = api.get(f"/api/v1/workflow/{run['workflow_id']}/graph", params={"format": "mermaid"})
    assert mermaid.headers["content-type"].startswith("text/plain")
    assert mermaid.text.startswith("graph TD\n")
    assert 'Check_Amount -->|"default"| Auto_Approve' in mermaid.text
    dot = api.get("/api/v1/workflows/types/Flaky/graph", params={"format": "dot"}).text
    assert dot.startswith("digraph workflow {")
    text = api.get("/api/v1/workflows/types/Flaky/graph", params={"format": "text"}).text
    assert text.startswith("Flaky (3 steps)")


def test_metrics(api: httpx.Client) -> None:
    start(api, "OrderApproval", SMALL)
    start(api, "OrderApproval", {**SMALL, "items": []})
    summary = api.get("/api/v1/metrics/summary", params={"hours": 1}).json()
    assert summary["total"] >= 2
    assert summary["by_status"]["COMPLETED"] >= 1 and summary["by_status"]["FAILED"] >= 1
    assert sum(summary["by_status"].values()) == summary["total"]
    order = next(t for t in summary["by_type"] if t["workflow_type"] == "OrderApproval")
    assert order["completed"] >= 1 and order["failed"] >= 1
    assert summary["other_types"] == 0

    throughput = api.get(
        "/api/v1/metrics/throughput", params={"hours": 2, "bucket_minutes": 30}
    ).json()
    assert len(throughput["buckets"]) == 4
    assert throughput["basis"] == "created_at"
    assert throughput["completed"] == sum(b["completed"] for b in throughput["buckets"]) >= 1
    assert throughput["buckets"][-1]["created"] >= 2
    assert throughput["completed_per_minute"] == throughput["completed"] / 120


def test_schedules(api: httpx.Client) -> None:
    schedule = {
        "schedule_name": "nightly-small-order",
        "workflow_type": "OrderApproval",
        "cron_expression": "0 2 * * *",
        "initial_data": SMALL,
    }
    created = api.post("/api/v1/schedules", json=schedule)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["enabled"] is True and body["next_run_at"].endswith("02:00:00Z")
    assert body["run_count"] == 0

    replaced = api.post("/api/v1/schedules", json={**schedule, "cron_expression": "30 3 * * *"})
    assert replaced.status_code == 200
    assert replaced.json()["next_run_at"].endswith("03:30:00Z")

    listed = api.get("/api/v1/schedules").json()["schedules"]
    assert [s["schedule_name"] for s in listed] == ["nightly-small-order"]
    assert api.get("/api/v1/schedules/nightly-small-order").json()["cron_expression"] == (
        "30 3 * * *"
    )

    paused = api.post("/api/v1/schedules/nightly-small-order/pause")
    assert paused.status_code == 200 and paused.json()["enabled"] is False
    resumed = api.post("/api/v1/schedules/nightly-small-order/resume")
    assert resumed.status_code == 200 and resumed.json()["enabled"] is True

    deleted = api.delete("/api/v1/schedules/nightly-small-order")
    assert deleted.status_code == 204 and deleted.content == b""
    error_of(api.get("/api/v1/schedules/nightly-small-order"), 404, "schedule_not_found")
    assert api.get("/api/v1/schedules").json() == {"schedules": []}


def test_openapi_document(api: httpx.Client) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    expected = {
        ("get", "/health"),
        ("get", "/api/v1/workflows/types"),
        ("get", "/api/v1/workflows/types/{workflow_type}"),
        ("get", "/api/v1/workflows/types/{workflow_type}/graph"),
        ("get", "/api/v1/workflows/counts"),
        ("get", "/api/v1/workflow/{workflow_id}/steps"),
        ("get", "/api/v1/workflows"),
        ("get", "/api/v1/workflows/{workflow_id}"),
        ("get", "/api/v1/workflow/{workflow_id}/status"),
        ("post", "/api/v1/workflow/start"),
        ("post", "/api/v1/workflow/{workflow_id}/next"),
        ("post", "/api/v1/workflow/{workflow_id}/resume"),
        ("post", "/api/v1/workflow/{workflow_id}/retry"),
        ("post", "/api/v1/workflow/{workflow_id}/cancel"),
        ("get", "/api/v1/workflow/{workflow_id}/current_step_info"),
        ("get", "/api/v1/workflow/{workflow_id}/graph"),
        ("get", "/api/v1/workflow/{workflow_id}/logs"),
        ("get", "/api/v1/workflow/{workflow_id}/metrics"),
        ("get", "/api/v1/workflow/{workflow_id}/audit"),
        ("get", "/api/v1/metrics/summary"),
        ("get", "/api/v1/metrics/throughput"),
        ("get", "/api/v1/schedules"),
        ("post", "/api/v1/schedules"),
        ("get", "/api/v1/schedules/{schedule_name}"),
        ("delete", "/api/v1/schedules/{schedule_name}"),
        ("post", "/api/v1/schedules/{schedule_name}/pause"),
        ("post", "/api/v1/schedules/{schedule_name}/resume"),
        ("post", "/api/v1/workflow/{workflow_id}/rewind"),
        ("get", "/api/v1/events"),
        ("get", "/metrics"),
    }
    assert {(method, path) for path, item in paths.items() for method in item} == expected
    start_op = paths["/api/v1/workflow/start"]["post"]
    body_ref = start_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/StartRequest")
    # Error responses are documented with the one error body, not FastAPI's default.
    invalid = start_op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert invalid.endswith("/ErrorResponse")
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert api.get("/docs").status_code == 200
