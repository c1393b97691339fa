"""``uvicorn ruvon_server.main:app``: the app made from the environment (docs/server.md).

A configuration that cannot work stops the process with one line saying why, before it
serves anything.
"""

from __future__ import annotations

from ruvon_server.app import create_app
from ruvon_server.settings import ConfigurationError

__all__ = ["app"]

try:
    app = create_app()
except ConfigurationError as exc:
    raise SystemExit(f"ruvon-server: configuration error: {exc}") from None
