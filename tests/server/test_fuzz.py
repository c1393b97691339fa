"""Fuzzing the OpenAPI document against the running server (schemathesis).

Every operation of ``/openapi.json`` (but the endless ``/api/v1/events`` stream) is called
with generated requests, valid and invalid, and every response must be no 5xx, with a
documented status code, a documented content type, and a body (and headers) matching the
documented model. The database is seeded first with runs in several statuses and a schedule;
the run ids and the schedule's name are offered to the id-taking endpoints beside generated
ones, so requests reach existing runs too.

Bounded and deterministic for CI: a fixed number of examples per operation (``FUZZ_MAX``
raises it for a longer hunt, with ``--timeout`` to match), derandomized, no deadline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from tests.server.conftest import APPROVAL, LARGE, SMALL, Server

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX", "30"))
"""Examples per operation."""

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
"""What the server promises for any request, valid or not."""

UNFUZZED = "^/api/v1/events$"
"""The Server-Sent Events stream never ends: a request would wait for ever."""


SCHEDULE: dict[str, Any] = {
    "schedule_name": "fuzz-nightly",
    "workflow_type": "OrderApproval",
    "cron_expression": "0 3 * * *",
    "initial_data": SMALL,
}


@dataclass
class Seeded:
    workflow_ids: list[str]
    schedule_names: list[str]


def _started(client: httpx.Client, workflow_type: str, data: dict[str, Any]) -> str:
    response = client.post(
        "/api/v1/workflow/start", json={"workflow_type": workflow_type, "initial_data": data}
    )
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["workflow_id"]
    return workflow_id


def seed(server: Server) -> Seeded:
    """Runs in several statuses (completed, waiting, failed, cancelled) and a schedule."""
    with server.client(headers={"X-User-ID": "fuzz"}) as client:
        completed = _started(client, "OrderApproval", SMALL)
        waiting = _started(client, "OrderApproval", LARGE)
        approved = _started(client, "OrderApproval", LARGE)
        resumed = client.post(f"/api/v1/workflow/{approved}/resume", json={"user_input": APPROVAL})
        assert resumed.status_code == 200, resumed.text
        failed = _started(client, "Flaky", {"fail_marker": str(server.project)})  # exists: fails
        cancelled = _started(client, "OrderApproval", LARGE)
        stopped = client.post(f"/api/v1/workflow/{cancelled}/cancel", json={"reason": "fuzz"})
        assert stopped.status_code == 200, stopped.text
        schedule = client.post("/api/v1/schedules", json=SCHEDULE)
        assert schedule.status_code in (200, 201), schedule.text
    return Seeded([completed, waiting, approved, failed, cancelled], [SCHEDULE["schedule_name"]])


def valid_bodies(server: Server) -> dict[str, list[Any]]:
    """Per operation, bodies that pass validation, for the fuzzer to mix in."""
    start = "POST /api/v1/workflow/start"
    approval = [{"user_input": APPROVAL}]
    return {
        start: [
            {"workflow_type": "OrderApproval", "initial_data": SMALL},
            {"workflow_type": "OrderApproval", "initial_data": LARGE},
            {"workflow_type": "Flaky", "initial_data": {"fail_marker": str(server.project)}},
        ],
        "POST /api/v1/workflow/{workflow_id}/next": approval,
        "POST /api/v1/workflow/{workflow_id}/resume": approval,
        "POST /api/v1/workflow/{workflow_id}/retry": [{"run": True}, {"from_step": "Prepare"}],
        "POST /api/v1/schedules": [{**SCHEDULE, "schedule_name": "fuzz-hourly"}],
    }


def ensure_schedule(server: Server) -> None:
    """The seeded schedule exists (a fuzzed DELETE may have removed it)."""
    with server.client() as client:
        client.post("/api/v1/schedules", json=SCHEDULE)


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Iterator[BaseSchema]:
    seeded = seed(server)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")

    bodies = valid_bodies(server)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        """Offer bodies that get past the validation (a known type, acceptable input)."""
        label = context.operation.label if context.operation is not None else ""
        return st.sampled_from([body, *bodies.get(label, [])])

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Offer the seeded runs and schedules beside the generated value."""
        choices: dict[str, list[str]] = {
            "workflow_id": seeded.workflow_ids,
            "schedule_name": seeded.schedule_names,
        }
        options = [path_parameters]
        for name, known in choices.items():
            if name in (path_parameters or {}):
                options += [{**path_parameters, name: value} for value in known]
        return st.sampled_from(options)

    yield schema


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=UNFUZZED)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_its_schema(case: Case[Any], server: Server) -> None:
    if (case.path_parameters or {}).get("schedule_name") == SCHEDULE["schedule_name"]:
        ensure_schedule(server)
    case.call_and_validate(checks=CHECKS, timeout=30)
