"""Authentication (SEC-01), custom routers (API-18), configurations that must stop the server,
and ``ruvon server``: each test starts its own server (SQLite)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.server.conftest import (
    SMALL,
    LaunchServer,
    Server,
    error_of,
    free_port,
    server_env,
    spawn,
    uvicorn_command,
    wait_healthy,
)

KEYS = "k-ann-0123456789:ann:operator,viewer; k-root-9876543210:root:admin"


def test_api_keys(launch_server: LaunchServer) -> None:
    server = launch_server(
        RUVON_AUTH_PROVIDER="api_key",
        RUVON_API_KEYS=KEYS,
        RUVON_CUSTOM_ROUTERS="server_flows.routers:router",
    )
    with server.client() as client:
        assert client.get("/health").status_code == 200  # open
        assert client.get("/openapi.json").status_code == 200

        missing = error_of(client.get("/api/v1/workflows"), 401, "unauthorized")
        assert "Authorization: Bearer" in missing["message"]
        assert "X-API-Key" in missing["message"]
        response = client.get("/api/v1/workflows")
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/api/v1/workflows", headers={"X-API-Key": "k-ann-0123456788"})
        assert error_of(wrong, 401, "unauthorized")["message"] == "Invalid API key."
        error_of(
            client.get("/api/v1/workflows", headers={"Authorization": "Bearer nope"}),
            401,
            "unauthorized",
        )
        error_of(
            client.get("/api/v1/workflows", headers={"Authorization": "Basic k-ann-0123456789"}),
            401,
            "unauthorized",
        )
        error_of(
            client.post("/api/v1/workflow/start", json={"workflow_type": "OrderApproval"}),
            401,
            "unauthorized",
        )

        bearer = {"Authorization": "Bearer k-ann-0123456789"}
        assert client.get("/api/v1/workflows", headers=bearer).status_code == 200
        header = {"X-API-Key": "k-root-9876543210"}
        assert client.get("/api/v1/workflows", headers=header).status_code == 200

        started = client.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": SMALL},
            headers=bearer,
        )
        assert started.status_code == 201, started.text
        workflow_id = started.json()["workflow_id"]
        # The key's user is the owner; X-User-ID does not override it.
        detail = client.get(
            f"/api/v1/workflows/{workflow_id}", headers={**header, "X-User-ID": "mallory"}
        ).json()
        assert detail["owner_id"] == "ann"
        cancelled = client.post(f"/api/v1/workflow/{workflow_id}/cancel", headers=header)
        assert cancelled.status_code == 409  # completed already
        audit = client.get(f"/api/v1/workflow/{workflow_id}/audit", headers=header).json()
        assert {entry["user_id"] for entry in audit} == {"ann"}

        # Custom routers are included behind the same authentication.
        error_of(client.get("/custom/types"), 401, "unauthorized")
        custom = client.get("/custom/types", headers=bearer)
        assert custom.status_code == 200
        assert set(custom.json()["types"]) == {"OrderApproval", "Flaky", "Slow"}


def test_auth_disabled_takes_the_user_from_headers(launch_server: LaunchServer) -> None:
    server = launch_server(RUVON_AUTH_PROVIDER="disabled", RUVON_EXECUTION_PROVIDER="thread_pool")
    with server.client() as client:
        anonymous = client.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": SMALL},
        )
        assert anonymous.status_code == 201
        assert (
            client.get(f"/api/v1/workflows/{anonymous.json()['workflow_id']}").json()["owner_id"]
            is None
        )
        named = client.post(
            "/api/v1/workflow/start",
            json={"workflow_type": "OrderApproval", "initial_data": SMALL},
            headers={"X-User-ID": "bob", "X-Org-ID": "acme", "X-API-Key": "ignored"},
        )
        detail = client.get(f"/api/v1/workflows/{named.json()['workflow_id']}").json()
        assert (detail["owner_id"], detail["org_id"]) == ("bob", "acme")
        assert detail["status"] == "COMPLETED"  # plain step functions ran on the thread pool


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUVON_AUTH_PROVIDER": "jwt"}, "RUVON_AUTH_PROVIDER='jwt' is not supported"),
        ({"RUVON_EXECUTION_PROVIDER": "fibers"}, "RUVON_EXECUTION_PROVIDER='fibers' is not one"),
        ({"RUVON_AUTH_PROVIDER": "api_key"}, "needs at least one key in RUVON_API_KEYS"),
        (
            {"RUVON_AUTH_PROVIDER": "api_key", "RUVON_API_KEYS": "justakey"},
            "RUVON_API_KEYS: entry 1 is not 'key:user'",
        ),
        (
            {"RUVON_CUSTOM_ROUTERS": "no_such_module:router"},
            "cannot include 'no_such_module:router'",
        ),
        (
            {"RUVON_CUSTOM_ROUTERS": "server_flows.routers:not_a_router"},
            "'server_flows.routers:not_a_router' is a int, not a fastapi.APIRouter",
        ),
    ],
)
def test_configurations_that_stop_the_server(
    project: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    log = tmp_path / "server.log"
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    process = spawn(uvicorn_command(free_port()), project, server_env(database, **env), log)
    try:
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code != 0
    output = log.read_text()
    assert "ruvon-server: configuration error:" in output
    assert message in output
    assert "Traceback" not in output
    assert "justakey" not in output  # a key is never echoed


def test_ruvon_server_command(project: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ruvon"
    found = str(script) if script.exists() else shutil.which("ruvon")
    if found is None:
        pytest.fail("The 'ruvon' console script is not installed: pip install -e '.[dev]'")
    port = free_port()
    log = tmp_path / "cli-server.log"
    database = tmp_path / "cli.db"
    env = server_env("sqlite:///unused.db")
    del env["RUVON_DATABASE_URL"]
    env["RUVON_CONFIG_PATH"] = str(tmp_path / "cli-config.yaml")
    command = [
        found,
        "server",
        "--port",
        str(port),
        "--db",
        str(database),
        "--log-level",
        "warning",
    ]
    process = spawn(command, project, env, log)
    url = f"http://127.0.0.1:{port}"
    running = Server(url, process, log, project, f"sqlite:///{database}")
    try:
        wait_healthy(process, url, log)
        with running.client() as client:
            started = client.post(
                "/api/v1/workflow/start",
                json={"workflow_type": "OrderApproval", "initial_data": SMALL},
            )
            assert started.json()["status"] == "COMPLETED"
    finally:
        running.stop()
    assert database.exists()  # the server used the --db file
    assert running.process.returncode is not None
