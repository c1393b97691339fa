"""The HTTP client contract used by HTTP steps. The default implementation is
:class:`ruvon.implementations.http.httpx_client.HttpxClient`; tests and users may pass any
object with this shape (``WorkflowBuilder(http_client=...)``) to swap the transport.

A client sends one fully rendered :class:`HttpRequest` and returns the :class:`HttpResponse`,
whatever its status: a 404 or a 503 is a response, not an exception. When no response comes
back it raises :class:`HttpTransportError` (or :class:`HttpTimeoutError`); the HTTP step
retries those (with its ``retry_policy``), as it does plain ``OSError``/``TimeoutError``
exceptions of clients that do not translate theirs. Anything else a client raises fails the
step at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ruvon.errors import RuvonError

__all__ = ["HttpClient", "HttpRequest", "HttpResponse", "HttpTimeoutError", "HttpTransportError"]


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
    """Seconds the attempt may take (``None``: the client's own default)."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: the status, the headers (names in lower case) and the body as text."""

    status_code: int
    headers: Mapping[str, str]
    text: str


class HttpTransportError(RuvonError):
    """No response: the connection could not be made or broke off. Worth retrying."""


class HttpTimeoutError(HttpTransportError, TimeoutError):
    """No response within the request's timeout. Worth retrying."""


@runtime_checkable
class HttpClient(Protocol):
    """Sends requests. Transport failures (connection refused, timeout) raise exceptions; any
    HTTP status is a response."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and return the response, whatever its status."""
        ...
