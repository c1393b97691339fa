"""The CLI's configuration file: ``RUVON_CONFIG_PATH``, default ``~/.ruvon/config.yaml``.

It holds the persistence to use when neither ``--db`` nor ``RUVON_DATABASE_URL`` says
(``ruvon config set-persistence``), the execution provider and a few defaults. A missing file
is the empty configuration; a file that is not valid YAML is an error naming it and the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULTS", "PROVIDERS", "CliSettings", "config_path", "load", "save"]

PROVIDERS = ("memory", "sqlite", "postgres")
"""Persistence providers the CLI can be set to."""
EXECUTORS = ("sync", "thread_pool")
"""Execution providers the CLI can be set to (Celery runs in its own workers)."""
DEFAULTS: dict[str, Any] = {"auto_execute": False, "interactive": False, "json_output": False}
"""The keys of ``defaults`` and their values when unset."""


def config_path() -> Path:
    """Where the configuration file is."""
    value = os.environ.get("RUVON_CONFIG_PATH", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".ruvon" / "config.yaml"


@dataclass
class CliSettings:
    """The configuration file's content."""

    persistence: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def database_url(self) -> str | None:
        """The database URL the persistence settings name, or ``None`` (not set)."""
        provider = self.persistence.get("provider")
        if provider == "memory":
            return "memory://"
        if provider == "sqlite":
            path = self.persistence.get("db_path")
            return f"sqlite:///{Path(path).expanduser().resolve()}" if path else None
        if provider == "postgres":
            url = self.persistence.get("db_url")
            return str(url) if url else None
        return None

    def default(self, key: str) -> Any:
        """A ``defaults`` value (its built-in value when unset)."""
        return self.defaults.get(key, DEFAULTS.get(key))

    def to_dict(self) -> dict[str, Any]:
        return {
            "persistence": dict(self.persistence),
            "execution": dict(self.execution),
            "defaults": {**DEFAULTS, **self.defaults},
        }


def load(path: Path | None = None) -> CliSettings:
    """The configuration in ``path`` (default :func:`config_path`)."""
    from ruvon_cli._context import EXIT_USAGE, CliError

    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return CliSettings()
    except OSError as exc:
        raise CliError(f"Cannot read the configuration {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CliError(f"The configuration {path} is not valid YAML{where}.", EXIT_USAGE) from None
    if not isinstance(data, dict):
        raise CliError(f"The configuration {path} must be a mapping.", EXIT_USAGE)
    sections = {}
    for name in ("persistence", "execution", "defaults"):
        value = data.get(name) or {}
        if not isinstance(value, dict):
            raise CliError(f"'{name}' in {path} must be a mapping.", EXIT_USAGE)
        sections[name] = value
    return CliSettings(**sections)


def save(settings: CliSettings, path: Path | None = None) -> Path:
    """Write ``settings`` (creating the directory); return the path."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in settings.to_dict().items() if v}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
