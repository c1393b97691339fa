"""The server's configuration, read once from the environment (API-19, SEC-01, API-18).

| variable | default | meaning |
|---|---|---|
| ``RUVON_CONFIG_DIR`` | ``./config`` | the registry and workflow files |
| ``RUVON_WORKFLOW_REGISTRY_PATH`` | ``<config dir>/workflow_registry.yaml`` | a registry |
| ``RUVON_DATABASE_URL`` (``RUVON_DB_URL``) | ``sqlite:///ruvon.db`` | the database |
| ``RUVON_EXECUTION_PROVIDER`` | ``sync`` | ``sync``, ``thread_pool`` or ``celery`` (to workers) |
| ``RUVON_AUTH_PROVIDER`` | ``disabled`` | ``disabled`` or ``api_key`` |
| ``RUVON_API_KEYS`` | | ``key:user:role,role;key2:user2:admin`` (``api_key``) |
| ``RUVON_CUSTOM_ROUTERS`` | | ``module:router,module.attr`` included at start-up |

A value that cannot work (an unknown auth provider, ``api_key`` without keys, a malformed key
entry) is a :class:`ConfigurationError` naming the variable: the server refuses to start rather
than run open by mistake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ruvon.settings import database_url

__all__ = [
    "AUTH_PROVIDERS",
    "EXECUTION_PROVIDERS",
    "ApiKey",
    "ConfigurationError",
    "ServerSettings",
    "parse_api_keys",
]

AUTH_PROVIDERS = ("disabled", "api_key")
"""The values of ``RUVON_AUTH_PROVIDER`` this server implements."""

EXECUTION_PROVIDERS = ("sync", "thread_pool", "celery")
"""The values of ``RUVON_EXECUTION_PROVIDER``: the SDK's default (plain step functions run on
the event loop, blocking it while they run), or a thread pool (plain step functions on threads,
so a blocking step does not hold up other requests)."""


class ConfigurationError(ValueError):
    """The environment configures the server in a way that cannot work."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted API key and who it stands for."""

    key: str = field(repr=False)
    user_id: str
    roles: tuple[str, ...] = ()


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """``key:user:role1,role2;key2:user2:admin`` -> the keys (roles optional). Raises
    ConfigurationError naming the entry (by position, never by its key) that is malformed."""
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for position, entry in enumerate(text.split(";"), start=1):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0].strip() or not parts[1].strip():
            raise ConfigurationError(
                f"RUVON_API_KEYS: entry {position} is not 'key:user' or 'key:user:role,role'."
            )
        key, user = parts[0].strip(), parts[1].strip()
        if key in seen:
            raise ConfigurationError(f"RUVON_API_KEYS: entry {position} repeats a key.")
        seen.add(key)
        roles = (
            tuple(r.strip() for r in parts[2].split(",") if r.strip()) if len(parts) == 3 else ()
        )
        keys.append(ApiKey(key, user, roles))
    return tuple(keys)


@dataclass(frozen=True)
class ServerSettings:
    """What the app is built with; :meth:`from_env` reads it from the environment."""

    config_dir: Path | None = None
    """The registry's directory (None: the SDK's default, ``./config``)."""
    registry_path: Path | None = None
    """A registry file other than ``<config_dir>/workflow_registry.yaml``."""
    database_url: str = field(default_factory=database_url)
    execution_provider: str = "sync"
    auth_provider: str = "disabled"
    api_keys: tuple[ApiKey, ...] = ()
    custom_routers: tuple[str, ...] = ()
    """``module:attr`` (or ``module.attr``) paths of APIRouters to include."""
    ui_enabled: bool = True
    """Serve the web page at ``/ui`` (``RUVON_UI_ENABLED=0`` turns it off)."""

    def __post_init__(self) -> None:
        if self.execution_provider not in EXECUTION_PROVIDERS:
            raise ConfigurationError(
                f"RUVON_EXECUTION_PROVIDER={self.execution_provider!r} is not one of: "
                f"{', '.join(EXECUTION_PROVIDERS)}."
            )
        if self.auth_provider not in AUTH_PROVIDERS:
            supported = ", ".join(AUTH_PROVIDERS)
            raise ConfigurationError(
                f"RUVON_AUTH_PROVIDER={self.auth_provider!r} is not supported by this server "
                f"(use one of: {supported}); refusing to start without authentication."
            )
        if self.auth_provider == "api_key" and not self.api_keys:
            raise ConfigurationError(
                "RUVON_AUTH_PROVIDER=api_key needs at least one key in RUVON_API_KEYS "
                "('key:user:role,role;key2:user2:admin')."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """The settings the environment gives (see the module)."""
        env = os.environ if environ is None else environ

        def value(name: str) -> str:
            return env.get(name, "").strip()

        config_dir = value("RUVON_CONFIG_DIR")
        registry = value("RUVON_WORKFLOW_REGISTRY_PATH")
        routers = value("RUVON_CUSTOM_ROUTERS")
        return cls(
            config_dir=Path(config_dir) if config_dir else None,
            registry_path=Path(registry) if registry else None,
            database_url=database_url(env),
            execution_provider=(value("RUVON_EXECUTION_PROVIDER") or "sync").lower(),
            auth_provider=(value("RUVON_AUTH_PROVIDER") or "disabled").lower(),
            api_keys=parse_api_keys(env.get("RUVON_API_KEYS", "")),
            custom_routers=tuple(p.strip() for p in routers.split(",") if p.strip()),
            ui_enabled=value("RUVON_UI_ENABLED").lower() not in ("0", "false", "no", "off"),
        )
