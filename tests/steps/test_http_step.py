"""HTTP steps against a real local server, on every store: templates (state, secrets,
context), JSON and text answers (the body alone, or the parts ``includes`` lists), retries of
5xx, transport errors and timeouts (never of 4xx) and the HTTP retry defaults, the idempotency
key, error messages without secrets, bad templates and missing secrets, and a swapped
transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ruvon import HttpStepError, TemplateError, Workflow, WorkflowStatus
from ruvon.definition.schema import HttpRetryPolicy, HttpStep, StandardStep, WorkflowDefinition
from ruvon.implementations.http.httpx_client import HttpxClient
from ruvon.providers.http import HttpRequest, HttpResponse
from ruvon.providers.persistence import PersistenceProvider
from ruvon.steps.http import RUNS_METADATA_KEY, idempotency_key
from tests.steps.http_support import H, LocalServer, closed_port, write_http
from tests.support.config import ConfigDir, audit_types

NO_DELAY = {"max_attempts": 3, "delay_seconds": 0}
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def config(tmp_path: Path) -> ConfigDir:
    return ConfigDir(tmp_path / "config")


async def start(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer, **data: Any
) -> Workflow:
    """A new ``Http`` workflow (written by the test first) calling ``server``."""
    builder = config.builder(store)
    return await builder.create_workflow("Http", {"order_id": "A1", "base_url": server.url, **data})


# -- requests and responses ------------------------------------------------------------------


async def test_templates_render_the_request_from_state_secrets_and_context(
    config: ConfigDir,
    store: PersistenceProvider,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUVON_TEST_API_TOKEN", TOKEN)
    write_http(
        config,
        "Http",
        http_config={
            "method": "{{ state.method }}",
            "url": "{{ state.base_url }}/echo/{{ state.order_id }}",
            "headers": {
                "Authorization": "Bearer {{ secrets.RUVON_TEST_API_TOKEN }}",
                "X-Step": "{{ context.step_name }} of {{ context.workflow_type }}",
            },
            "query_params": {"amount": "{{ state.amount }}", "kind": "order"},
            "body": {
                "order": "{{ state.order_id }}",
                "amount": "{{ state.amount }}",
                "customer": "{{ state.customer }}",
                "token": "{{ secrets['RUVON_TEST_API_TOKEN'] | length }}",
            },
        },
        output_key="response",
    )
    customer = {"name": "Ada", "tags": ["vip"]}
    wf = await start(config, store, server, method="put", amount=12, customer=customer)

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    (request,) = server.requests
    assert (request.method, request.path) == ("PUT", "/echo/A1")
    assert request.query == {"amount": ["12"], "kind": ["order"]}
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-step"] == "Call of Http"
    assert request.headers["content-type"] == "application/json"
    # Single-expression templates keep their types: an int, a dict.
    expected_body = {"order": "A1", "amount": 12, "customer": customer, "token": len(TOKEN)}
    loaded = await config.builder(store).load_workflow(wf.id)
    # Without includes, the result is the parsed body alone (here: what the server echoes).
    response = loaded.state.response
    assert set(response) == {"method", "path", "query", "headers", "json", "text"}
    assert response["json"] == expected_body
    assert loaded.metadata[RUNS_METADATA_KEY] == {"Call": 1}


async def test_without_includes_a_text_answer_is_stored_as_the_text(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config, "Http", http_config={"url": "{{ state.base_url }}/text"}, output_key="response"
    )
    wf = await start(config, store, server)

    await wf.next_step()

    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.state.response == "plain text answer"


async def test_includes_with_all_three_parts_keeps_the_status_body_and_headers(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={"url": "{{ state.base_url }}/echo/A1"},
        output_key="response",
        includes=["status_code", "body", "headers"],
    )
    wf = await start(config, store, server)

    await wf.next_step()

    loaded = await config.builder(store).load_workflow(wf.id)
    response = loaded.state.response
    assert set(response) == {"status_code", "body", "headers"}
    assert response["status_code"] == 200
    assert response["body"]["path"] == "/echo/A1"
    assert response["headers"]["content-type"] == "application/json"


async def test_a_text_answer_is_stored_as_text_and_includes_filters_the_parts(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={"url": "{{ state.base_url }}/text"},
        output_key="response",
        includes=["body", "status_code"],
    )
    wf = await start(config, store, server)

    await wf.next_step()

    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.state.response == {"status_code": 200, "body": "plain text answer"}
    assert server.requests[0].method == "GET"
    assert server.requests[0].body == b""


async def test_deep_merge_keeps_the_keys_the_response_does_not_have(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={"url": "{{ state.base_url }}/text"},
        output_key="response",
        includes=["status_code"],
        merge_strategy="DEEP",
    )
    wf = await start(config, store, server, response={"kept": True, "status_code": 0})

    await wf.next_step()

    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.state.response == {"kept": True, "status_code": 200}


async def test_a_raw_string_body_is_sent_as_it_is(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={
            "method": "post",
            "url": "{{ state.base_url }}/echo",
            "headers": {"Content-Type": "application/xml"},
            "body": "<order id='{{ state.order_id }}'/>",
        },
        output_key="response",
    )
    wf = await start(config, store, server)

    await wf.next_step()

    assert server.requests[0].body == b"<order id='A1'/>"
    assert server.requests[0].headers["content-type"] == "application/xml"
    assert wf.state.response["text"] == "<order id='A1'/>"


# -- retries ---------------------------------------------------------------------------------


async def test_5xx_is_retried_until_it_succeeds_with_one_idempotency_key(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={
            "url": "{{ state.base_url }}/flaky/2",
            "headers": {
                "Idempotency-Key": "{{ context.idempotency_key }}",
                "X-Attempt": "{{ context.attempt }}",
            },
            "retry_policy": NO_DELAY,
        },
        output_key="response",
    )
    wf = await start(config, store, server)

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    requests = server.to("/flaky/2")
    assert [r.headers["x-attempt"] for r in requests] == ["1", "2", "3"]
    assert {r.headers["idempotency-key"] for r in requests} == {idempotency_key(wf.id, "Call", 1)}
    assert wf.state.response == {"ok": True, "calls": 3}


async def test_5xx_fails_the_step_when_the_retries_run_out(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config, "Http", http_config={"url": "{{ state.base_url }}/flaky/9"}, retry_policy=NO_DELAY
    )
    wf = await start(config, store, server)

    with pytest.raises(HttpStepError) as caught:
        await wf.next_step()

    assert caught.value.status_code == 503
    assert caught.value.body == {"error": "busy"}
    assert len(server.to("/flaky/9")) == 3
    message = f"HTTP step 'Call': GET {server.url}/flaky/9 answered 503"
    assert str(caught.value).startswith(message)
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.error_message is not None
    assert loaded.error_message.startswith(f"HttpStepError: {message}")
    assert loaded.state.response is None


async def test_4xx_is_never_retried(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={"url": "{{ state.base_url }}/status/404", "retry_policy": NO_DELAY},
    )
    wf = await start(config, store, server)

    with pytest.raises(HttpStepError, match=r"answered 404: .*status 404") as caught:
        await wf.next_step()

    assert caught.value.status_code == 404
    assert caught.value.body["error"] == "status 404"
    assert len(server.requests) == 1
    assert wf.status is WorkflowStatus.FAILED


@pytest.mark.parametrize("with_includes", [True, False], ids=["includes", "body-only"])
async def test_without_fail_on_status_an_error_answer_is_stored(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer, with_includes: bool
) -> None:
    keys: dict[str, Any] = {"includes": ["status_code", "body"]} if with_includes else {}
    write_http(
        config,
        "Http",
        http_config={"url": "{{ state.base_url }}/status/409"},
        output_key="response",
        fail_on_status=False,
        **keys,
    )
    wf = await start(config, store, server)

    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    body = wf.state.response["body"] if with_includes else wf.state.response
    assert body["error"] == "status 409"
    if with_includes:
        assert wf.state.response["status_code"] == 409


class CountingClient:
    """The real client, counting what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[HttpRequest] = []
        self.client = HttpxClient(pooled=False)

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        return await self.client.send(request)


async def test_a_transport_error_is_retried(config: ConfigDir, store: PersistenceProvider) -> None:
    port = closed_port()
    write_http(
        config, "Http", http_config={"url": f"http://127.0.0.1:{port}/x", "retry_policy": NO_DELAY}
    )
    counting = CountingClient()
    wf = await config.builder(store, http_client=counting).create_workflow(
        "Http", {"order_id": "A1"}
    )

    with pytest.raises(
        HttpStepError, match=r"got no response \(HttpTransportError: Connect"
    ) as caught:
        await wf.next_step()

    assert caught.value.status_code is None
    assert len(counting.sent) == 3
    assert str(caught.value).startswith(f"HTTP step 'Call': GET http://127.0.0.1:{port}/x got")
    assert wf.status is WorkflowStatus.FAILED


async def test_timeout_bounds_each_attempt(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(
        config,
        "Http",
        http_config={
            "url": "{{ state.base_url }}/slow",
            "timeout": 0.2,
            "retry_policy": {"max_attempts": 2, "delay": 0},
        },
    )
    wf = await start(config, store, server)

    with pytest.raises(HttpStepError, match=r"got no response \(no answer within 0.2 s\)"):
        await wf.next_step()

    assert len(server.to("/slow")) == 2
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.FAILED


@pytest.mark.parametrize("where", ["http_config", "step"])
async def test_an_empty_http_retry_policy_makes_one_attempt(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer, where: str
) -> None:
    http_config: dict[str, Any] = {"url": "{{ state.base_url }}/flaky/1"}
    keys: dict[str, Any] = {}
    if where == "http_config":
        http_config["retry_policy"] = {}
    else:
        keys["retry_policy"] = {}
    write_http(config, "Http", http_config=http_config, **keys)
    wf = await start(config, store, server)

    with pytest.raises(HttpStepError) as caught:
        await wf.next_step()

    # The generic default (3 attempts) would have succeeded on the second one.
    assert caught.value.status_code == 503
    assert len(server.to("/flaky/1")) == 1
    assert wf.status is WorkflowStatus.FAILED


def test_http_retry_policy_defaults_are_one_attempt_and_five_seconds(config: ConfigDir) -> None:
    after = [{"name": "Check", "function": f"{H}.fail_once", "retry_policy": {}}]
    write_http(config, "Http", http_config={"url": "http://x.invalid", "retry_policy": {}})
    write_http(
        config,
        "Http2",
        http_config={"url": "http://x.invalid"},
        retry_policy={"backoff_multiplier": 3},
        after=after,
    )
    builder = config.builder()

    first = WorkflowDefinition.model_validate(builder.get_workflow_config("Http")).steps[0]
    second, check = WorkflowDefinition.model_validate(builder.get_workflow_config("Http2")).steps

    assert isinstance(first, HttpStep)
    assert isinstance(second, HttpStep)
    for policy in (first.http_config.retry_policy, second.retry_policy):
        assert isinstance(policy, HttpRetryPolicy)
        assert (policy.max_attempts, policy.delay_seconds) == (1, 5.0)
        assert policy.delay_before(2) == 5.0
    assert second.retry_policy is not None
    assert second.retry_policy.backoff_multiplier == 3
    # Other kinds keep the generic defaults.
    assert isinstance(check, StandardStep)
    assert check.retry_policy is not None
    assert type(check.retry_policy) is not HttpRetryPolicy
    assert (check.retry_policy.max_attempts, check.retry_policy.delay_seconds) == (3, 1.0)


# -- the idempotency key across runs ---------------------------------------------------------

KEYED = {
    "url": "{{ state.base_url }}/echo",
    "headers": {"Idempotency-Key": "{{ context.idempotency_key }}"},
}


async def test_a_failed_run_retried_keeps_its_idempotency_key(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    write_http(config, "Http", http_config={**KEYED, "url": "{{ state.base_url }}/flaky/1"})
    wf = await start(config, store, server)
    with pytest.raises(HttpStepError):
        await wf.next_step()

    await wf.retry()
    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    keys = [r.headers["idempotency-key"] for r in server.requests]
    assert keys == [idempotency_key(wf.id, "Call", 1)] * 2


async def test_a_completed_step_run_again_gets_a_new_idempotency_key(
    config: ConfigDir, store: PersistenceProvider, server: LocalServer
) -> None:
    after = [{"name": "Check", "function": "tests.steps.http_support.fail_once"}]
    write_http(config, "Http", http_config=KEYED, output_key="response", after=after)
    wf = await start(config, store, server)
    await wf.next_step()
    with pytest.raises(RuntimeError, match="checker not ready"):
        await wf.next_step()

    await wf.retry(from_step="Call")
    await wf.next_step()
    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    keys = [r.headers["idempotency-key"] for r in server.requests]
    assert keys == [idempotency_key(wf.id, "Call", 1), idempotency_key(wf.id, "Call", 2)]
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.metadata[RUNS_METADATA_KEY] == {"Call": 2}


# -- secrets and bad templates ---------------------------------------------------------------


async def test_error_messages_and_records_show_no_secret(
    config: ConfigDir,
    store: PersistenceProvider,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUVON_TEST_API_TOKEN", TOKEN)
    write_http(
        config,
        "Http",
        http_config={
            "url": "{{ state.base_url }}/status/401/{{ secrets.RUVON_TEST_API_TOKEN }}"
            "?key={{ secrets.RUVON_TEST_API_TOKEN }}",
            "headers": {"Authorization": "Bearer {{ secrets.RUVON_TEST_API_TOKEN }}"},
            "query_params": {"token": "{{ secrets.RUVON_TEST_API_TOKEN }}"},
        },
    )
    wf = await start(config, store, server)

    with pytest.raises(HttpStepError) as caught:
        await wf.next_step()

    # The server got the secret (and repeated it in its answer); no message shows it.
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN in caught.value.body["echo"]
    message = str(caught.value)
    assert message.startswith(f"HTTP step 'Call': GET {server.url}/status/401/*** answered 401")
    assert "Bearer ***" in message
    loaded = await config.builder(store).load_workflow(wf.id)
    records = [
        loaded.error_message or "",
        *[str(entry.data) for entry in await store.get_audit_log(wf.id, limit=100)],
        *[entry.message for entry in await store.get_execution_logs(wf.id)],
    ]
    assert all(TOKEN not in record for record in [message, *records])


async def test_a_missing_secret_fails_the_step_by_name_and_sends_nothing(
    config: ConfigDir,
    store: PersistenceProvider,
    server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUVON_TEST_NOT_SET", raising=False)
    write_http(
        config,
        "Http",
        http_config={
            "url": "{{ state.base_url }}/echo",
            "headers": {"X-Key": "{{ secrets.RUVON_TEST_NOT_SET }}"},
            "retry_policy": NO_DELAY,
        },
        output_key="response",
    )
    wf = await start(config, store, server)

    pattern = r"^HTTP step 'Call': secret 'RUVON_TEST_NOT_SET' is not set \(EnvironmentSecrets"
    with pytest.raises(TemplateError, match=pattern):
        await wf.next_step()

    assert server.requests == []
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.state.response is None
    assert RUNS_METADATA_KEY not in loaded.metadata
    assert await audit_types(store, wf.id) == ["WORKFLOW_STARTED", "STEP_FAILED", "WORKFLOW_FAILED"]


@pytest.mark.parametrize(
    ("key", "template", "detail"),
    [
        ("url", "{{ state.base_url }/echo", "Invalid template"),
        ("body", {"x": "{{ state.no_such_field }}"}, "no_such_field"),
        ("body", "{{ state.__class__.__mro__ }}", "unsafe"),
        ("method", "{{ 'fetch' }}", "rendered to 'FETCH'"),
    ],
    ids=["syntax", "undefined", "sandbox", "method"],
)
async def test_a_bad_template_fails_the_step_by_name_and_sends_nothing(
    config: ConfigDir,
    store: PersistenceProvider,
    server: LocalServer,
    key: str,
    template: Any,
    detail: str,
) -> None:
    http_config = {"url": "{{ state.base_url }}/echo", "method": "POST", key: template}
    write_http(config, "Http", http_config=http_config, output_key="response")
    wf = await start(config, store, server)

    with pytest.raises(TemplateError, match=rf"^HTTP step 'Call': .*{key}") as caught:
        await wf.next_step()

    assert detail in str(caught.value)
    assert server.requests == []
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.status is WorkflowStatus.FAILED
    assert loaded.state.response is None


# -- the transport is pluggable --------------------------------------------------------------


class FakeClient:
    """A transport that answers every request itself."""

    def __init__(self) -> None:
        self.sent: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        return HttpResponse(201, {"Content-Type": "application/json"}, '{"id": 7}')


async def test_the_builder_s_http_client_replaces_the_transport(
    config: ConfigDir, store: PersistenceProvider
) -> None:
    write_http(
        config,
        "Http",
        http_config={
            "method": "POST",
            "url": "https://payments.invalid/orders/{{ state.order_id }}",
            "body": {"amount": "{{ state.amount }}"},
            "timeout": 7,
        },
        output_key="response",
        includes=["status_code", "body"],
    )
    fake = FakeClient()
    builder = config.builder(store, http_client=fake)
    wf = await builder.create_workflow("Http", {"order_id": "A1", "amount": 5})

    await wf.next_step()

    (request,) = fake.sent
    assert (request.method, request.url, request.json, request.timeout) == (
        "POST",
        "https://payments.invalid/orders/A1",
        {"amount": 5},
        7.0,
    )
    loaded = await config.builder(store).load_workflow(wf.id)
    assert loaded.state.response == {"status_code": 201, "body": {"id": 7}}
