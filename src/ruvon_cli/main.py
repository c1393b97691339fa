"""The ``ruvon`` command: the app, its global options, and the command groups (one module
each) registered on it."""

from __future__ import annotations

import logging
import os
from importlib import import_module
from typing import Annotated

import typer

from ruvon_cli import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="ruvon",
    help=(
        "Operate Ruvon workflows from a terminal, scripts and cron.\n\n"
        "The database is --db, else RUVON_DATABASE_URL, else the config file "
        "(ruvon config set-persistence), else ./ruvon.db. Workflow types come from "
        "./config/workflow_registry.yaml (or RUVON_CONFIG_DIR).\n\n"
        "Exit codes: 0 success, 1 error, 2 bad arguments or JSON, 3 database error, "
        "4 not found."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "ruvon_cli.config_cmds",
    "ruvon_cli.workflows",
    "ruvon_cli.definitions",
    "ruvon_cli.db",
    "ruvon_cli.operations",
    "ruvon_cli.server_cmd",
)
"""The modules whose ``register(app)`` adds their commands, in the order of ``--help``
(``workflows`` also adds those of ``reading`` and ``interactive``, ``definitions`` that of
``validate_cmd``)."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ruvon {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an error and the engine's log."),
    ] = False,
) -> None:
    """Operate Ruvon workflows from a terminal, scripts and cron."""
    if debug:
        os.environ["RUVON_DEBUG"] = "1"
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    else:
        # The engine's own log lines (e.g. "Step failed: ...") are in the run's execution log
        # (ruvon logs); on stderr an error is one line, written by the command.
        logging.getLogger("ruvon").addHandler(logging.NullHandler())
        logging.getLogger("ruvon").propagate = False


for _name in COMMAND_MODULES:
    try:
        _module = import_module(_name)
    except ModuleNotFoundError as _missing:  # a group not written yet
        if _missing.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    """The console script's entry point."""
    app()
