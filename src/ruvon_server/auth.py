"""Who makes a request (SEC-01): ``RUVON_AUTH_PROVIDER=disabled|api_key``.

- ``disabled`` (default): every request is accepted; the optional ``X-User-ID`` and
  ``X-Org-ID`` headers name the user and organisation recorded with what it does.
- ``api_key``: a key from ``RUVON_API_KEYS`` must come as ``Authorization: Bearer <key>`` or
  ``X-API-Key: <key>``; otherwise 401. Keys are compared as SHA-256 digests with
  :func:`hmac.compare_digest`, against every configured key, so the time taken tells nothing
  about how much of a key matched.

The user is the ``owner_id`` of the runs a request starts and the ``actor`` of what it does
(recorded in the audit log). Routes get it with ``Depends(principal)``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ruvon_server.errors import ApiError
from ruvon_server.inputs import check_text
from ruvon_server.settings import ApiKey, ServerSettings

__all__ = ["Principal", "authenticator", "principal"]


@dataclass(frozen=True)
class Principal:
    """The user a request acts for (``None``: anonymous)."""

    user_id: str | None = None
    org_id: str | None = None
    roles: tuple[str, ...] = ()


ANONYMOUS = Principal()

_bearer = HTTPBearer(auto_error=False, description="An API key from RUVON_API_KEYS.")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from RUVON_API_KEYS."
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class _KeyRing:
    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = [(_digest(key.key), key) for key in keys]

    def find(self, given: str) -> ApiKey | None:
        digest = _digest(given)
        found: ApiKey | None = None
        for candidate, key in self._keys:  # no early exit: every key is compared
            if hmac.compare_digest(digest, candidate):
                found = key
        return found


Authenticator = Callable[..., Coroutine[Any, Any, None]]


def authenticator(settings: ServerSettings) -> Authenticator:
    """The dependency every API route runs first: it identifies the caller (or answers 401)
    and keeps the :class:`Principal` on ``request.state``."""
    if settings.auth_provider == "api_key":
        ring = _KeyRing(settings.api_keys)

        async def by_api_key(
            request: Request,
            bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            header_key: Annotated[str | None, Depends(_api_key_header)],
        ) -> None:
            given = header_key or (bearer.credentials if bearer is not None else None)
            if not given:
                raise ApiError(
                    401,
                    "unauthorized",
                    "Missing API key: send it as 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>'.",
                )
            key = ring.find(given)
            if key is None:
                raise ApiError(401, "unauthorized", "Invalid API key.")
            request.state.principal = Principal(key.user_id, None, key.roles)

        return by_api_key

    async def open_access(
        request: Request,
        x_user_id: Annotated[
            str | None, Header(description="Recorded as the owner and actor (auth disabled).")
        ] = None,
        x_org_id: Annotated[
            str | None, Header(description="Recorded as the run's org_id (auth disabled).")
        ] = None,
    ) -> None:
        request.state.principal = Principal(
            check_text(x_user_id, "X-User-ID") or None,
            check_text(x_org_id, "X-Org-ID") or None,
        )

    return open_access


def principal(request: Request) -> Principal:
    """The caller, as the router's authenticator identified it."""
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else ANONYMOUS
