"""HTTP client implementations (HTTP steps).

:func:`default_http_client` is what the builder gives HTTP steps when it has no
``http_client``: an ``HttpxClient(pooled=False)`` made on the first request, so that importing
Ruvon (or running workflows without HTTP steps) never imports httpx.
"""

from __future__ import annotations

import functools

from ruvon.providers.http import HttpClient, HttpRequest, HttpResponse

__all__ = ["default_http_client"]


class _FirstUseClient:
    """Makes the per-request ``HttpxClient`` on its first request and hands requests to it."""

    __slots__ = ("_client",)

    def __init__(self) -> None:
        self._client: HttpClient | None = None

    async def send(self, request: HttpRequest) -> HttpResponse:
        if self._client is None:
            from ruvon.implementations.http.httpx_client import HttpxClient

            self._client = HttpxClient(pooled=False)
        return await self._client.send(request)


@functools.cache
def default_http_client() -> HttpClient:
    """The process's default HTTP client: a new connection per request, bound to no event loop
    and with nothing to close (pass ``WorkflowBuilder(http_client=HttpxClient())`` for pooled
    connections)."""
    return _FirstUseClient()
