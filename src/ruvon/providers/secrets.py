"""The secrets contract: where templates' ``secrets.NAME`` come from. The default reads
environment variables (:class:`ruvon.implementations.secrets.env.EnvironmentSecrets`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SecretsProvider"]


@runtime_checkable
class SecretsProvider(Protocol):
    """Looks secrets up by name."""

    def get_secret(self, name: str) -> str | None:
        """The secret's value, or ``None`` when there is none by that name."""
        ...
