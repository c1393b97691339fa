"""The web page for operators, served at ``/ui`` (``GET /`` redirects there).

Plain HTML, CSS and JavaScript modules in ``static/``, shipped in the package and served as
they are: no build step, nothing fetched from the internet. The page talks to the same REST API
as every other client (``/api/v1``, with the user's API key when auth is on) and listens to its
event stream, so it can do nothing a client could not. See ``docs/ui.md``.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["STATIC_DIR", "UI_PATH", "mount_ui"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
UI_PATH = "/ui"


class _Static(StaticFiles):
    """The page's files, revalidated on every load (an upgrade is seen at once) and kept off
    other origins' frames."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = _CSP
        return response


_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Only this server's own files and API: the page loads nothing from anywhere else."""


def mount_ui(app: FastAPI) -> None:
    """Serve the page at ``/ui/`` and redirect ``/`` to it."""

    async def to_ui() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/")

    app.add_api_route("/", to_ui, include_in_schema=False)
    app.mount(UI_PATH, _Static(directory=STATIC_DIR, html=True), name="ui")
