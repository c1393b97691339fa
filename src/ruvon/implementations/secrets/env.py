"""The default :class:`~ruvon.providers.secrets.SecretsProvider`: environment variables."""

from __future__ import annotations

import os

__all__ = ["EnvironmentSecrets"]


class EnvironmentSecrets:
    """Reads secret ``NAME`` from the environment variable ``<prefix>NAME``, at each lookup
    (so a variable set after start-up is seen). An unset variable is no secret (``None``)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def get_secret(self, name: str) -> str | None:
        """The value of the environment variable ``prefix + name``, or ``None``."""
        return os.environ.get(self.prefix + name)

    def __repr__(self) -> str:
        return f"EnvironmentSecrets(prefix={self.prefix!r})"
