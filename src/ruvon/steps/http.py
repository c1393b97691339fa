"""HTTP steps: send a request rendered from templates and store the response in the state.

**Templates.** ``method``, ``url``, ``headers``, ``query_params`` and ``body`` of
``http_config`` are rendered by the workflow's template engine (sandboxed Jinja2 by default;
a string that is exactly one ``{{ expression }}`` keeps the value's type) with:

- ``state``: the state's JSON form (what the store keeps);
- ``secrets``: ``secrets.NAME`` or ``secrets['NAME']`` asks the secrets provider (the
  builder's ``secrets_provider``; default: environment variables). A missing secret fails the
  step with a :class:`TemplateError` naming the step and the secret;
- ``context``: ``workflow_id``, ``workflow_type``, ``step_name``, ``attempt`` (1, 2 … within
  this run's retries), ``step_run`` (1 for the first run of the step in this workflow, 2 after
  it completed once and runs again …) and ``idempotency_key``.

**Idempotency key.** ``context.idempotency_key`` is a UUID derived from the workflow id, the
step name and ``step_run``. It stays the same for every attempt of one run of the step: the
retries of ``retry_policy``, a run repeated because the process died before the step was
committed, and ``Workflow.retry()`` of the workflow the step failed. It changes only when the
step completed and runs again (a jump or ``retry(from_step=...)`` back to it). So a server that
deduplicates on it (send it as a header: ``Idempotency-Key: "{{ context.idempotency_key }}"``)
applies one run of the step once. The number of completed runs per step is kept in the
workflow's metadata under ``http_step_runs``.

**Response.** The step's result under ``output_key`` (merged SHALLOW, or DEEP into the
current value) is, without ``includes``, the response's body: parsed when the response is JSON,
else the text. With ``includes``, it is a dict of the listed parts of ``{status_code, body,
headers}`` (header names in lower case).

**Failures.** With ``fail_on_status`` (the default) a 4xx answer fails the step at once, and a
5xx once the retries ran out, with :class:`HttpStepError` (``status_code``, ``body``); without
it the answer is stored whatever its status (5xx still retried first). No response (connection
failure, ``timeout``, which bounds each attempt) is an :class:`HttpStepError` with
``status_code`` None. ``retry_policy`` (in ``http_config`` or on the step; an
:class:`HttpRetryPolicy`, default 1 attempt and 5 s delay) retries only transport errors,
timeouts and 5xx. Error messages show the URL without its query string and
user info, with every secret value the templates read masked as ``***``.

**Defaults.** The client and the secrets come from ``run.services``, which the builder fills:
without ``http_client``, :func:`ruvon.implementations.http.default_http_client` (an
``HttpxClient(pooled=False)`` made on the first request: a new connection per request, bound
to no event loop, nothing to close; pass ``WorkflowBuilder(http_client=HttpxClient())`` and
close it yourself for pooled connections); without ``secrets_provider``,
``EnvironmentSecrets()``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import HTTP_METHODS, HttpConfig, HttpRetryPolicy, HttpStep
from ruvon.errors import HttpStepError, TemplateError
from ruvon.models import MergeStrategy
from ruvon.providers.http import HttpRequest, HttpResponse, HttpTransportError
from ruvon.providers.secrets import SecretsProvider
from ruvon.providers.template_engine import TemplateEngine
from ruvon.serialization import jsonable, loads
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun, with_retries
from ruvon.steps.merging import deep_into_state

__all__ = ["RUNS_METADATA_KEY", "HttpRunner", "idempotency_key"]

logger = logging.getLogger("ruvon.steps")

RUNS_METADATA_KEY = "http_step_runs"
"""Workflow metadata key: step name -> how many times the HTTP step completed."""

_KEY_NAMESPACE = uuid.UUID("42d5f111-a3d7-400b-beb3-fbf742c27c55")
_TRANSPORT_ERRORS = (HttpTransportError, OSError, TimeoutError, asyncio.TimeoutError)
_SNIPPET = 200


def idempotency_key(workflow_id: str, step_name: str, step_run: int) -> str:
    """The idempotency key of run ``step_run`` of an HTTP step (a UUID, deterministic)."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{workflow_id}\n{step_name}\n{step_run}"))


class _MissingSecret(Exception):
    """Raised inside a template; not a LookupError, which Jinja2 would take for "undefined"."""


class _Secrets:
    """The templates' ``secrets``: each name is asked of the provider once per step run."""

    __slots__ = ("_missing", "_provider", "_values")

    def __init__(self, provider: SecretsProvider) -> None:
        self._provider = provider
        self._values: dict[str, str] = {}
        self._missing: str | None = None

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):  # copy, pickle and Jinja2 probe dunders: none is a secret
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            value = self._provider.get_secret(name)
            if value is None:
                self._missing = name
                raise _MissingSecret(f"secret '{name}' is not set")
            self._values[name] = value
        return value

    def __repr__(self) -> str:
        return "<secrets>"


def _mask(secrets: _Secrets, text: str) -> str:
    """``text`` with every secret value the templates read replaced by ``***``."""
    for value in sorted(secrets._values.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    return text


def _shown_url(url: str, secrets: _Secrets) -> str:
    """The URL as error messages show it: no user info, query or fragment; secrets masked."""
    try:
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    except ValueError:
        url = url.partition("?")[0]
    return _mask(secrets, url)


def _render(
    step_name: str,
    key: str,
    template: Any,
    templates: TemplateEngine,
    variables: Mapping[str, Any],
    secrets: _Secrets,
) -> Any:
    """``http_config.<key>`` rendered; failures name the step, the key (or the secret)."""
    try:
        return templates.render(template, variables)
    except Exception as exc:
        if secrets._missing is not None:
            raise TemplateError(
                f"HTTP step '{step_name}': secret '{secrets._missing}' is not set "
                f"({secrets._provider!r} has no value for it; http_config.{key} uses it)"
            ) from None
        detail = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
        raise TemplateError(
            f"HTTP step '{step_name}': cannot render http_config.{key}: {_mask(secrets, detail)}"
        ) from None


def _request(
    step_name: str,
    config: HttpConfig,
    templates: TemplateEngine,
    variables: Mapping[str, Any],
    secrets: _Secrets,
    timeout: float,
) -> HttpRequest:
    """The request of one attempt, rendered."""

    def render(key: str, template: Any) -> Any:
        return _render(step_name, key, template, templates, variables, secrets)

    method = str(render("method", config.method)).strip().upper()
    if method not in HTTP_METHODS:
        raise TemplateError(
            f"HTTP step '{step_name}': http_config.method rendered to {method!r}; "
            f"expected one of {', '.join(HTTP_METHODS)}"
        )
    headers = render("headers", config.headers)
    params = render("query_params", config.query_params)
    body = render("body", config.body)
    raw = isinstance(body, (str, bytes))
    return HttpRequest(
        method=method,
        url=str(render("url", config.url)),
        headers={str(k): str(v) for k, v in headers.items() if v is not None},
        params={str(k): v for k, v in params.items() if v is not None},
        json=None if raw else body,
        content=body if raw else None,
        timeout=timeout,
    )


def _is_json(headers: Mapping[str, str]) -> bool:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _body(response: HttpResponse) -> Any:
    """The response's body: parsed when it is JSON (and parses), else the text."""
    if _is_json(response.headers) and response.text.strip():
        try:
            return loads(response.text)
        except ValueError:
            pass
    return response.text


def _snippet(text: str, secrets: _Secrets) -> str:
    short = re.sub(r"\s+", " ", text).strip()
    if len(short) > _SNIPPET:
        short = short[:_SNIPPET] + "…"
    return _mask(secrets, short)


def _retryable(error: Exception) -> bool:
    """Transport errors, timeouts and 5xx answers are worth another attempt; nothing else."""
    if not isinstance(error, HttpStepError):
        return False
    if error.status_code is not None:
        return error.status_code >= 500
    return isinstance(error.__cause__, _TRANSPORT_ERRORS)


def _completed_runs(metadata: Mapping[str, Any]) -> dict[str, int]:
    stored = metadata.get(RUNS_METADATA_KEY)
    if not isinstance(stored, Mapping):
        return {}
    return {str(k): v for k, v in stored.items() if isinstance(v, int) and v >= 0}


class HttpRunner(RunnerBase):
    """Runs an HTTP step (see the module docstring)."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, HttpStep)
        config = definition.http_config
        services = run.services
        client, provider = services.http_client, services.secrets
        if client is None or provider is None:
            missing = "http_client" if client is None else "secrets"
            raise TemplateError(
                f"HTTP step '{step.name}' has no {missing} (workflows built by WorkflowBuilder "
                "get its defaults; pass StepServices with both to a Workflow built by hand)"
            )
        secrets = _Secrets(provider)
        policy: HttpRetryPolicy | None = config.retry_policy or definition.retry_policy
        attempts = policy.max_attempts if policy is not None else 1
        timeout = config.timeout
        if definition.timeout_seconds is not None:
            timeout = min(timeout, definition.timeout_seconds)
        runs = _completed_runs(run.metadata)
        step_run = runs.get(step.name, 0) + 1
        context = {
            "workflow_id": run.workflow_id,
            "workflow_type": run.workflow_type,
            "step_name": step.name,
            "step_run": step_run,
            "idempotency_key": idempotency_key(run.workflow_id, step.name, step_run),
        }
        state = jsonable(run.state)

        async def attempt(number: int) -> tuple[HttpResponse, Any]:
            variables = {
                "state": state,
                "secrets": secrets,
                "context": {**context, "attempt": number},
            }
            request = _request(step.name, config, run.templates, variables, secrets, timeout)
            shown = _shown_url(request.url, secrets)
            try:
                response = await asyncio.wait_for(client.send(request), timeout)
            except (TimeoutError, asyncio.TimeoutError) as exc:
                raise HttpStepError(
                    step.name, request.method, shown, detail=f"no answer within {timeout} s"
                ) from exc
            except Exception as exc:
                detail = _mask(secrets, f"{type(exc).__name__}: {exc}")
                raise HttpStepError(step.name, request.method, shown, detail=detail) from exc
            status = response.status_code
            logger.info("HTTP step %s: %s %s -> %d", step.name, request.method, shown, status)
            body = _body(response)
            retry = status >= 500 and number < attempts
            if status >= 400 and (definition.fail_on_status or retry):
                raise HttpStepError(
                    step.name,
                    request.method,
                    shown,
                    status_code=status,
                    body=body,
                    detail=_snippet(response.text, secrets),
                )
            return response, body

        response, body = await with_retries(
            step, attempt, retryable=_retryable, policy=policy, run=run
        )
        stored: Any = body
        if definition.includes is not None:
            parts = {
                "status_code": response.status_code,
                "body": body,
                "headers": dict(response.headers),
            }
            stored = {key: value for key, value in parts.items() if key in definition.includes}
        result: dict[str, Any] = {definition.output_key: stored}
        if definition.merge_strategy is MergeStrategy.DEEP:
            result = deep_into_state(run.state, result)
        return StepOutcome(
            result=result, metadata={RUNS_METADATA_KEY: {**runs, step.name: step_run}}
        )
