"""``ruvon server``: run the REST server (``ruvon_server.main:app``) with uvicorn, in the
project directory (its ``config/`` and step modules), on the CLI's database.

The CLI does not import the server: it hands uvicorn the app's import path and tells the
server its database and definitions through the environment it reads (docs/server.md).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

from ruvon_cli._context import EXIT_USAGE, CliError, database_url, fail
from ruvon_cli.db import Db

__all__ = ["register", "server"]

APP = "ruvon_server.main:app"


def register(app: typer.Typer) -> None:
    app.command("server")(server)


def _require_server_packages() -> None:
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        fail(
            f"The server needs {', '.join(missing)}: pip install 'ruvon-sdk[server]'",
            EXIT_USAGE,
        )


def server(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="The interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=1, max=65535, metavar="PORT", help="The port.")
    ] = 8000,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart when files change (development only).")
    ] = False,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            metavar="DIR",
            help="The registry's directory (default: RUVON_CONFIG_DIR, else ./config).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", metavar="LEVEL", help="uvicorn's log level.")
    ] = "info",
    db: Db = None,
) -> None:
    """Run the REST API server (the web page at /ui, Swagger UI at /docs) until Ctrl+C.

    Authentication and custom routers come from the environment (RUVON_AUTH_PROVIDER,
    RUVON_API_KEYS, RUVON_CUSTOM_ROUTERS); see docs/server.md.

    Example: ruvon server --port 8000 --db postgresql://ruvon@localhost/orders
    """
    try:
        _require_server_packages()
        os.environ["RUVON_DATABASE_URL"] = database_url(db)
    except CliError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        raise typer.Exit(exc.code) from None
    if config_dir is not None:
        os.environ["RUVON_CONFIG_DIR"] = str(config_dir.resolve())
    import uvicorn

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Ruvon web page: http://{shown}:{port}/ui/  (API docs: /docs)", err=True)
    uvicorn.run(
        APP,
        host=host,
        port=port,
        reload=reload,
        log_level=log_level.lower(),
        app_dir=os.getcwd(),
    )
