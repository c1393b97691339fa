"""What the web page reads beside the runs themselves, through the real server: where each step
of a run stands (``/workflow/{id}/steps``), the runs per status (``/workflows/counts``), a type
with its state model's schema (``/workflows/types/{type}``), and the page itself at ``/ui``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import APPROVAL, LARGE, MISSING_ID, SMALL, LaunchServer, error_of


def start(api: httpx.Client, workflow_type: str, data: dict[str, Any], **headers: str) -> str:
    response = api.post(
        "/api/v1/workflow/start",
        json={"workflow_type": workflow_type, "initial_data": data},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["workflow_id"]
    return workflow_id


def states(api: httpx.Client, workflow_id: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/api/v1/workflow/{workflow_id}/steps")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["workflow_id"] == workflow_id
    return {step["name"]: step for step in body["steps"]}


def state_names(api: httpx.Client, workflow_id: str) -> dict[str, str]:
    return {name: step["state"] for name, step in states(api, workflow_id).items()}


def test_steps_of_a_waiting_then_completed_run(api: httpx.Client) -> None:
    workflow_id = start(api, "OrderApproval", LARGE)
    waiting = states(api, workflow_id)
    assert list(waiting) == [
        "Validate_Order", "Check_Amount", "Auto_Approve", "Manager_Approval", "Complete_Order",
        "Reject_Order",
    ]  # fmt: skip
    assert {name: step["state"] for name, step in waiting.items()} == {
        "Validate_Order": "done",
        "Check_Amount": "done",
        "Auto_Approve": "skipped",
        "Manager_Approval": "waiting",
        "Complete_Order": "pending",
        "Reject_Order": "pending",
    }
    assert waiting["Manager_Approval"]["current"] is True
    assert waiting["Validate_Order"]["attempts"] == 1
    assert waiting["Validate_Order"]["duration_ms"] > 0
    assert waiting["Validate_Order"]["finished_at"] is not None
    assert waiting["Manager_Approval"]["attempts"] == 0
    assert waiting["Manager_Approval"]["kind"] == "HUMAN_IN_LOOP"

    resumed = api.post(f"/api/v1/workflow/{workflow_id}/resume", json={"user_input": APPROVAL})
    assert resumed.json()["status"] == "COMPLETED", resumed.text
    assert state_names(api, workflow_id) == {
        "Validate_Order": "done",
        "Check_Amount": "done",
        "Auto_Approve": "skipped",
        "Manager_Approval": "done",
        "Complete_Order": "done",
        "Reject_Order": "skipped",
    }


def test_steps_of_a_failed_then_retried_run(api: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "down"
    marker.touch()
    workflow_id = start(api, "Flaky", {"fail_marker": str(marker)})
    failed = states(api, workflow_id)
    assert {name: step["state"] for name, step in failed.items()} == {
        "Prepare": "done",
        "Fetch": "failed",
        "Finish": "pending",
    }
    assert "upstream unavailable" in failed["Fetch"]["error"]
    assert failed["Fetch"]["attempts"] == 1

    # Back to the start without running: everything from there is pending again.
    back = api.post(
        f"/api/v1/workflow/{workflow_id}/retry", json={"from_step": "Prepare", "run": False}
    )
    assert back.json()["status"] == "ACTIVE", back.text
    assert state_names(api, workflow_id) == {
        "Prepare": "pending",
        "Fetch": "pending",
        "Finish": "pending",
    }
    assert states(api, workflow_id)["Prepare"]["current"] is True

    marker.unlink()
    done = api.post(f"/api/v1/workflow/{workflow_id}/next", json={})
    assert done.json()["status"] == "COMPLETED", done.text
    after = states(api, workflow_id)
    assert {name: step["state"] for name, step in after.items()} == dict.fromkeys(after, "done")
    assert after["Prepare"]["attempts"] == 2  # the first run still counts
    assert after["Fetch"]["attempts"] == 2
    assert after["Fetch"]["error"] is None


def test_steps_of_a_cancelled_run(api: httpx.Client) -> None:
    workflow_id = start(api, "OrderApproval", LARGE)
    cancelled = api.post(f"/api/v1/workflow/{workflow_id}/cancel", json={"reason": "duplicate"})
    assert cancelled.json()["status"] == "CANCELLED"
    assert state_names(api, workflow_id)["Manager_Approval"] == "cancelled"


def test_steps_of_an_unknown_run(api: httpx.Client) -> None:
    error_of(api.get(f"/api/v1/workflow/{MISSING_ID}/steps"), 404, "workflow_not_found")


def test_counts_by_status(api: httpx.Client) -> None:
    owner = "counter"
    for data in (SMALL, SMALL, LARGE):
        start(api, "OrderApproval", data, **{"X-User-ID": owner})
    body = api.get("/api/v1/workflows/counts", params={"owner": owner}).json()
    assert body == {"total": 3, "by_status": {"COMPLETED": 2, "WAITING_HUMAN": 1}}
    listed = api.get("/api/v1/workflows", params={"owner": owner}).json()
    assert listed["total"] == body["total"]
    none = api.get("/api/v1/workflows/counts", params={"owner": owner, "type": "Flaky"}).json()
    assert none == {"total": 0, "by_status": {}}
    everything = api.get("/api/v1/workflows/counts").json()
    assert everything["total"] == sum(everything["by_status"].values()) >= 3


def test_type_detail_has_the_state_schema(api: httpx.Client) -> None:
    body = api.get("/api/v1/workflows/types/OrderApproval").json()
    assert body["workflow_type"] == "OrderApproval"
    assert body["version"] == "1.0"
    assert body["step_count"] == 6
    assert body["problem"] is None
    schema = body["state_schema"]
    assert schema["type"] == "object"
    assert {"order_id", "customer", "items"} <= set(schema["required"])
    assert schema["properties"]["items"]["type"] == "array"
    error = error_of(api.get("/api/v1/workflows/types/Nope"), 404, "unknown_workflow_type")
    assert "OrderApproval" in error["details"]["known"]


def test_the_page_is_served(api: httpx.Client) -> None:
    root = api.get("/", follow_redirects=False)
    assert root.status_code == 307
    assert root.headers["location"] == "/ui/"
    page = api.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = api.get("/ui/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert api.get("/ui/js/nope.js").status_code == 404
    assert "/ui" not in api.get("/openapi.json").json()["paths"]


def test_the_page_can_be_turned_off(launch_server: LaunchServer) -> None:
    server = launch_server(RUVON_UI_ENABLED="0")
    with server.client() as client:
        assert client.get("/ui/").status_code == 404
        assert client.get("/", follow_redirects=False).status_code == 404
        assert client.get("/api/v1/workflows").status_code == 200
