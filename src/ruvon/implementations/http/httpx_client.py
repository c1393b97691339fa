"""The default :class:`~ruvon.providers.http.HttpClient`: httpx's ``AsyncClient``.

Two ways to use it:

- **pooled** (``HttpxClient()``, the default): one ``httpx.AsyncClient`` with a connection
  pool, made on the first request. Its connections belong to the event loop that made it, so
  the client is bound to that loop: a request from another loop is a ``RuntimeError``. Close it
  with ``await client.aclose()`` (or ``close()``), or use it as ``async with HttpxClient() as
  client``. Pass your own ``httpx.AsyncClient`` as ``client=`` to choose proxies, certificates,
  redirects …; it stays yours (``aclose()`` leaves it open).
- **per request** (``HttpxClient(pooled=False)``): a new ``AsyncClient`` for every request,
  closed when its response is read. Slower (a connection per request) but bound to no loop and
  with nothing to close; HTTP steps use one of these when the builder has no ``http_client``.
  The TLS context (loading the CA bundle is the costly part) is made once and shared.

httpx's own errors are translated at this boundary: timeouts become
:class:`~ruvon.providers.http.HttpTimeoutError`, connection failures
:class:`~ruvon.providers.http.HttpTransportError` (both retried by HTTP steps); other httpx
errors (an unsupported scheme, an invalid URL) propagate and fail the step at once.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from types import TracebackType
from typing import Any

import httpx

from ruvon.providers.http import HttpRequest, HttpResponse, HttpTimeoutError, HttpTransportError

__all__ = ["HttpxClient"]


@functools.cache
def _shared_tls() -> ssl.SSLContext:
    """httpx's default TLS context, made once per process and shared by the clients made per
    request (loading the CA bundle is what costs; the context is not changed once made)."""
    return httpx.create_ssl_context()


class HttpxClient:
    """Sends HTTP steps' requests with httpx (see the module docstring for pooled/per request).

    ``options`` are keyword arguments of ``httpx.AsyncClient`` (``verify``, ``proxy``,
    ``follow_redirects`` …) for the clients this object makes; they cannot go with ``client``.
    Redirects are not followed unless ``follow_redirects=True``.
    """

    def __init__(
        self, client: httpx.AsyncClient | None = None, *, pooled: bool = True, **options: Any
    ) -> None:
        if client is not None and (options or not pooled):
            raise ValueError("HttpxClient(client=...) takes no options and is always pooled")
        self.pooled = pooled
        self._options = options
        self._client = client
        self._owned = client is None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``; any status is a response, no response raises
        :class:`HttpTransportError` (:class:`HttpTimeoutError` for a timeout)."""
        arguments: dict[str, Any] = {
            "method": request.method,
            "url": request.url,
            "headers": dict(request.headers),
            "params": dict(request.params),
        }
        if request.timeout is not None:
            arguments["timeout"] = request.timeout
        if request.json is not None:
            arguments["json"] = request.json
        elif request.content is not None:
            arguments["content"] = request.content
        try:
            if self.pooled:
                response = await self._pooled_client().request(**arguments)
            else:
                async with self._new_client() as client:
                    response = await client.request(**arguments)
        except httpx.TimeoutException as exc:
            raise HttpTimeoutError(f"{type(exc).__name__}: {exc or 'timed out'}") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise HttpTransportError(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(response.status_code, dict(response.headers), response.text)

    async def aclose(self) -> None:
        """Close the pooled client this object made (not one passed in). Idempotent; the next
        request makes a new one."""
        client, self._client = (self._client, None) if self._owned else (None, self._client)
        self._loop = None
        if client is not None:
            await client.aclose()

    async def close(self) -> None:
        """The same as :meth:`aclose`."""
        await self.aclose()

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        options = (
            self._options
            if "verify" in self._options
            else {
                **self._options,
                "verify": _shared_tls(),
            }
        )
        return httpx.AsyncClient(**options)

    def _pooled_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None:
            self._client = self._new_client()
            self._loop = loop
        elif self._loop is None:
            self._loop = loop  # a client passed in: bound to the loop of its first request
        if self._loop is not loop:
            raise RuntimeError(
                "This HttpxClient's connections belong to another event loop; make one "
                "HttpxClient per event loop, or use HttpxClient(pooled=False)"
            )
        return self._client
