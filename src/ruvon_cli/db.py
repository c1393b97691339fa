"""``ruvon db``: create, migrate and inspect the database (CLI-16..20), over
:mod:`ruvon.database`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ruvon import database
from ruvon.database import DatabaseStats, MigrationInfo, MigrationStatus
from ruvon_cli._context import EXIT_ERROR, console, database_url, print_json, run

__all__ = ["Db", "Json", "register"]

db_app = typer.Typer(
    help=(
        "Create, migrate and inspect the database: an SQLite file or a PostgreSQL database. "
        "Every Ruvon process also applies missing migrations when it opens the database; "
        "these commands do it, and show it, ahead of time."
    ),
    no_args_is_help=True,
)

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=(
            "Database URL (sqlite:///path/file.db, postgresql://user@host/db) or SQLite file "
            "path. Default: RUVON_DATABASE_URL, else the config file, else ./ruvon.db."
        ),
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON only.")]


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("init")
def init(db: Db = None, json_output: Json = False) -> None:
    """Create the schema, or bring it up to this release's: apply every missing migration.
    Safe to run again, and from several processes at once.

    Example: ruvon db init --db postgresql://ruvon@localhost/orders
    """
    url = database_url(db)

    async def work() -> tuple[list[MigrationInfo], MigrationStatus]:
        applied = await database.migrate(url)
        return applied, await database.migration_status(url)

    applied, status = run(work)
    if json_output:
        print_json({**status.to_dict(), "applied_now": [m.to_dict() for m in applied]})
        return
    if not status.persistent:
        console.print(f"Nothing to initialize: {status.location}", markup=False, soft_wrap=True)
        return
    console.print(f"Database schema initialized: {status.location}", markup=False, soft_wrap=True)
    if applied:
        console.print(
            f"Applied {_count(len(applied), 'migration')}: {_names(applied)}", soft_wrap=True
        )
    console.print(f"Schema version: {_version(status)}", markup=False, soft_wrap=True)


@db_app.command("migrate")
def migrate(
    db: Db = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the pending migrations; apply nothing.")
    ] = False,
    json_output: Json = False,
) -> None:
    """List the pending migrations and apply them, each in its own transaction.

    Example: ruvon db migrate --dry-run
    """
    url = database_url(db)
    status = run(lambda: database.migration_status(url))
    pending = list(status.pending)
    if dry_run or not pending:
        if json_output:
            print_json(
                {"dry_run": dry_run, "pending": [m.to_dict() for m in pending], "applied": []}
            )
        elif not pending:
            console.print(
                f"No pending migrations: {status.location} is at version {_version(status)}",
                markup=False,
                soft_wrap=True,
            )
        else:
            _print_pending(status)
            console.print(f"Dry run: {_count(len(pending), 'migration')} would be applied.")
        return
    if json_output:
        applied = run(lambda: database.migrate(url))
        print_json(
            {
                "dry_run": False,
                "pending": [m.to_dict() for m in pending],
                "applied": [m.to_dict() for m in applied],
            }
        )
        return
    _print_pending(status)
    columns = (TextColumn("Migrating"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task("migrate", total=len(pending))

        def applied_one(migration: MigrationInfo) -> None:
            progress.advance(task)
            progress.console.print(f"  applied {migration.version:04d} {migration.name}")

        applied = run(lambda: database.migrate(url, on_applied=applied_one))
    console.print(
        f"Applied {_count(len(applied), 'migration')} to {status.location}",
        markup=False,
        soft_wrap=True,
    )


@db_app.command("status")
def status(db: Db = None, json_output: Json = False) -> None:
    """Show the schema version, the applied migrations and the pending ones.

    Example: ruvon db status --db ./ruvon.db
    """
    url = database_url(db)
    found = run(lambda: database.migration_status(url))
    if json_output:
        print_json(found.to_dict())
        return
    console.print(f"Database: {found.kind} {found.location}", markup=False, soft_wrap=True)
    if not found.persistent:
        console.print("Nothing is persistent: there is no schema to migrate.")
        return
    console.print(f"Schema version: {_version(found)}", markup=False, soft_wrap=True)
    table = Table("Version", "Name", "Applied at")
    for migration in found.applied:
        table.add_row(f"{migration.version:04d}", migration.name, _time(migration))
    for migration in found.unknown:
        table.add_row(f"{migration.version:04d}", migration.name, f"{_time(migration)} (newer)")
    for migration in found.pending:
        table.add_row(f"{migration.version:04d}", migration.name, "pending")
    console.print(table)
    if found.unknown:
        console.print("A newer Ruvon migrated this database; upgrade this one.")
    if found.up_to_date:
        console.print("Database is up to date")
    else:
        count = _count(len(found.pending), "pending migration")
        console.print(
            f"{count}: run 'ruvon db migrate' (or 'ruvon db init').", markup=False, soft_wrap=True
        )


@db_app.command("stats")
def stats(db: Db = None, json_output: Json = False) -> None:
    """Show the database's kind, location and size, the rows of each Ruvon table and the
    workflows per status.

    Example: ruvon db stats --json
    """
    url = database_url(db)
    found = run(lambda: database.database_stats(url))
    if json_output:
        print_json(found.to_dict())
        return
    console.print(f"Database: {found.kind} {found.location}", markup=False, soft_wrap=True)
    if not found.persistent:
        console.print("Nothing is persistent: no statistics.")
        return
    console.print(f"Size: {_size(found)}")
    console.print(f"Schema version: {found.schema_version or '-'}")
    tables = Table("Table", "Rows")
    for name, rows in found.tables.items():
        tables.add_row(name, str(rows))
    console.print(tables)
    if found.workflows_by_status:
        statuses = Table("Status", "Workflows")
        for name, count in found.workflows_by_status.items():
            statuses.add_row(name, str(count))
        console.print(statuses)
    console.print(f"Total: {_count(found.total_workflows, 'workflow')}")


@db_app.command("validate")
def validate(db: Db = None, json_output: Json = False) -> None:
    """Check the schema against this release's migration files: every table, column (type
    and nullability) and index, and every migration applied. Exit 1 if anything differs.

    Example: ruvon db validate --db postgresql://ruvon@localhost/orders
    """
    url = database_url(db)
    problems = run(lambda: database.validate_schema(url))
    location = database.database_location(url)
    if json_output:
        print_json({"location": location, "valid": not problems, "problems": problems})
    elif not problems:
        console.print(f"Schema is valid: {location}", markup=False, soft_wrap=True)
    else:
        console.print(f"Schema problems in {location}:", markup=False, soft_wrap=True)
        for number, problem in enumerate(problems, 1):
            console.print(f"  {number}. {problem}", markup=False, soft_wrap=True)
    if problems:
        raise typer.Exit(EXIT_ERROR)


# -- output ----------------------------------------------------------------------------------


def _print_pending(status: MigrationStatus) -> None:
    console.print(f"Pending migrations in {status.location}:", markup=False, soft_wrap=True)
    for migration in status.pending:
        console.print(f"  {migration.version:04d} {migration.name}", markup=False, soft_wrap=True)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(migrations: list[MigrationInfo]) -> str:
    return ", ".join(f"{m.version:04d} {m.name}" for m in migrations)


def _version(status: MigrationStatus) -> str:
    version = status.current_version
    if version is None:
        return "none (no migration applied)"
    names = {m.version: m.name for m in (*status.applied, *status.unknown)}
    return f"{version:04d} ({names[version]})"


def _time(migration: MigrationInfo) -> str:
    at = migration.applied_at
    return "-" if at is None else at.isoformat(sep=" ", timespec="seconds")


def _size(found: DatabaseStats) -> str:
    size = found.size_bytes
    if size is None:
        return "-"
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, "KB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit} ({size} bytes)"
