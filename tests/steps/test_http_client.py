"""The default HTTP client and secrets provider, against the real local server: httpx errors
translated at the boundary, a pooled client bound to its event loop, a per-request client on
any loop, clients passed in left open; environment secrets; and what the HTTP step's schema
refuses at load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ruvon import DefinitionError
from ruvon.implementations.http.httpx_client import HttpxClient
from ruvon.implementations.secrets.env import EnvironmentSecrets
from ruvon.providers.http import (
    HttpClient,
    HttpRequest,
    HttpTimeoutError,
    HttpTransportError,
)
from ruvon.providers.secrets import SecretsProvider
from tests.steps.http_support import LocalServer, closed_port, write_http
from tests.support.config import ConfigDir


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    try:
        yield local
    finally:
        local.close()


async def test_a_pooled_client_sends_and_closes_as_a_context_manager(server: LocalServer) -> None:
    request = HttpRequest("POST", f"{server.url}/echo", {"X-A": "1"}, {"q": 2}, json={"b": [1]})

    async with HttpxClient() as client:
        assert isinstance(client, HttpClient)
        response = await client.send(request)
        await client.send(HttpRequest("PUT", f"{server.url}/echo", content="raw"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    posted, put = server.requests
    assert (posted.method, posted.query, json.loads(posted.body)) == (
        "POST",
        {"q": ["2"]},
        {"b": [1]},
    )
    assert (posted.headers["x-a"], posted.headers["content-type"]) == ("1", "application/json")
    assert (put.method, put.body) == ("PUT", b"raw")
    await client.aclose()  # idempotent


def test_a_per_request_client_works_on_successive_event_loops(server: LocalServer) -> None:
    client = HttpxClient(pooled=False)
    request = HttpRequest("GET", f"{server.url}/text")

    first = asyncio.run(client.send(request))
    second = asyncio.run(client.send(request))

    assert (first.text, second.text) == ("plain text answer", "plain text answer")


def test_a_pooled_client_refuses_another_event_loop(server: LocalServer) -> None:
    client = HttpxClient()
    request = HttpRequest("GET", f"{server.url}/text")
    asyncio.run(client.send(request))

    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(client.send(request))

    assert len(server.requests) == 1
    asyncio.run(client.aclose())


async def test_a_client_passed_in_stays_open(server: LocalServer) -> None:
    async with httpx.AsyncClient() as inner:
        client = HttpxClient(inner)
        response = await client.send(HttpRequest("GET", f"{server.url}/text"))
        await client.aclose()

        assert response.status_code == 200
        assert not inner.is_closed
    with pytest.raises(ValueError, match="takes no options"):
        HttpxClient(inner, follow_redirects=True)


async def test_no_response_is_a_transport_error_and_a_late_one_a_timeout(
    server: LocalServer,
) -> None:
    client = HttpxClient(pooled=False)

    with pytest.raises(HttpTransportError, match="ConnectError"):
        await client.send(HttpRequest("GET", f"http://127.0.0.1:{closed_port()}/"))
    with pytest.raises(HttpTimeoutError) as caught:
        await client.send(HttpRequest("GET", f"{server.url}/slow", timeout=0.2))

    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def test_environment_secrets_read_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "t0k")
    monkeypatch.delenv("APP_OTHER", raising=False)
    secrets = EnvironmentSecrets(prefix="APP_")

    assert isinstance(secrets, SecretsProvider)
    assert secrets.get_secret("TOKEN") == "t0k"
    assert secrets.get_secret("OTHER") is None
    assert EnvironmentSecrets().get_secret("APP_TOKEN") == "t0k"
    assert repr(secrets) == "EnvironmentSecrets(prefix='APP_')"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"http_config": {"url": "http://x.invalid", "method": "FETCH"}}, "method must be one of"),
        (
            {
                "http_config": {"url": "http://x.invalid", "retry_policy": {"max_attempts": 2}},
                "retry_policy": {"max_attempts": 3},
            },
            "not in both",
        ),
        (
            {"http_config": {"url": "http://x.invalid"}, "merge_strategy": "APPEND"},
            "SHALLOW or DEEP",
        ),
    ],
    ids=["method", "two-retry-policies", "merge-strategy"],
)
def test_the_schema_refuses_bad_http_steps_at_load(
    tmp_path: Path, keys: dict[str, object], message: str
) -> None:
    config = ConfigDir(tmp_path / "config")
    write_http(config, "Http", **keys)

    with pytest.raises(DefinitionError, match=message) as caught:
        config.builder().validate("Http")

    assert caught.value.issues[0].step == "Call"
