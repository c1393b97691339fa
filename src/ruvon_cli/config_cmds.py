"""``ruvon config``: the CLI's configuration file (CLI-01..06)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from ruvon_cli import settings
from ruvon_cli._context import EXIT_USAGE, CliError, console, fail, print_json

__all__ = ["register"]

config_app = typer.Typer(
    help="Show and change the CLI's configuration file (RUVON_CONFIG_PATH).",
    no_args_is_help=True,
)

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _guard(work: Any) -> None:
    try:
        work()
    except CliError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        raise typer.Exit(exc.code) from None


@config_app.command("show")
def show(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Print the current configuration.

    Example: ruvon config show --json
    """

    def work() -> None:
        current = settings.load().to_dict()
        if json_output:
            print_json({"path": str(settings.config_path()), **current})
            return
        console.print(f"# {settings.config_path()}")
        console.print(yaml.safe_dump(current, sort_keys=False).rstrip(), markup=False)

    _guard(work)


@config_app.command("path")
def path() -> None:
    """Print the path of the configuration file.

    Example: ruvon config path
    """
    typer.echo(str(settings.config_path()))


@config_app.command("set-persistence")
def set_persistence(
    provider: Annotated[
        str, typer.Option("--provider", help="memory, sqlite or postgres.")
    ] = "sqlite",
    db_path: Annotated[
        Path | None, typer.Option("--db-path", help="The SQLite file (sqlite).")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="postgresql://user@host/db (postgres).")
    ] = None,
    pool_min: Annotated[
        int | None, typer.Option("--pool-min", help="Pool size (postgres).")
    ] = None,
    pool_max: Annotated[
        int | None, typer.Option("--pool-max", help="Pool size (postgres).")
    ] = None,
) -> None:
    """Set the database used when neither --db nor RUVON_DATABASE_URL is given.

    Example: ruvon config set-persistence --provider sqlite --db-path ~/orders/ruvon.db
    """

    def work() -> None:
        if provider not in settings.PROVIDERS:
            known = ", ".join(settings.PROVIDERS)
            fail(f"Unknown persistence provider '{provider}'; use one of {known}.", EXIT_USAGE)
        chosen: dict[str, Any] = {"provider": provider}
        if provider == "sqlite":
            chosen["db_path"] = str((db_path or Path("ruvon.db")).expanduser().resolve())
        elif provider == "postgres":
            if not db_url:
                fail("--db-url is required for postgres.", EXIT_USAGE)
            chosen["db_url"] = db_url
            chosen.update({k: v for k, v in (("pool_min", pool_min), ("pool_max", pool_max)) if v})
        current = settings.load()
        current.persistence = chosen
        written = settings.save(current)
        console.print(f"Persistence provider set to: {provider} ({written})", markup=False)

    _guard(work)


@config_app.command("set-execution")
def set_execution(
    provider: Annotated[str, typer.Option("--provider", help="sync or thread_pool.")] = "sync",
) -> None:
    """Set the execution provider of workflows the CLI runs (Celery runs in its workers).

    Example: ruvon config set-execution --provider thread_pool
    """

    def work() -> None:
        if provider not in settings.EXECUTORS:
            known = ", ".join(settings.EXECUTORS)
            fail(f"Unknown execution provider '{provider}'; use one of {known}.", EXIT_USAGE)
        current = settings.load()
        current.execution = {"provider": provider}
        settings.save(current)
        console.print(f"Execution provider set to: {provider}", markup=False)

    _guard(work)


@config_app.command("set-default")
def set_default(
    key: Annotated[str, typer.Argument(help="auto_execute, interactive or json_output.")],
    value: Annotated[str, typer.Argument(help="true or false.")],
) -> None:
    """Set a default of the CLI.

    Example: ruvon config set-default json_output true
    """

    def work() -> None:
        if key not in settings.DEFAULTS:
            known = ", ".join(settings.DEFAULTS)
            fail(f"Unknown default '{key}'; use one of {known}.", EXIT_USAGE)
        flag = value.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            fail(f"'{value}' is not true or false.", EXIT_USAGE)
        current = settings.load()
        current.defaults[key] = flag in ("true", "1", "yes")
        settings.save(current)
        console.print(f"{key} = {current.defaults[key]}", markup=False)

    _guard(work)


@config_app.command("reset")
def reset(yes: Yes = False) -> None:
    """Remove the configuration file (back to the defaults).

    Example: ruvon config reset --yes
    """
    target = settings.config_path()
    if not yes and not typer.confirm(f"Remove {target}?"):
        raise typer.Exit(1)
    target.unlink(missing_ok=True)
    console.print("Configuration reset.", markup=False)
