"""The HTTP client contract used by HTTP steps. The default implementation is
:class:`ruvon.implementations.http.httpx_client.HttpxClient`; tests and users may pass any
object with this shape (``WorkflowBuilder(http_client=...)``) to swap the transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["HttpClient", "HttpRequest", "HttpResponse"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request, fully rendered."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    """A JSON body (``None``: no JSON body)."""
    content: str | bytes | None = None
    """A raw body, when the body is not JSON."""
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: the status, the headers and the body as text."""

    status_code: int
    headers: Mapping[str, str]
    text: str


@runtime_checkable
class HttpClient(Protocol):
    """Sends requests. Transport failures (connection refused, timeout) raise exceptions; any
    HTTP status is a response."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...
