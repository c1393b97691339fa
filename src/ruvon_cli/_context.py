"""What every command shares: which database and which definitions it works on, how a command
runs its coroutine, how errors become one line on stderr and an exit code, and JSON output.

**The database** is ``--db`` (a URL such as ``sqlite:////abs/path.db`` or ``postgresql://...``,
or a path to an SQLite file), else ``RUVON_DATABASE_URL``, else the persistence set in the
config file (``ruvon config set-persistence``), else the SDK's default (the SQLite file
``ruvon.db`` in the working directory) — so ``ruvon list`` shows what the application created.

**The definitions** are those of ``./config/workflow_registry.yaml`` (or ``RUVON_CONFIG_DIR``,
or ``--config``); the working directory is importable, so step modules next to it load.

**Exit codes**: 0 success, 1 error, 2 bad arguments or bad JSON, 3 database error, 4 not found.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ruvon import WorkflowBuilder
from ruvon.errors import PersistenceError, RuvonError, WorkflowNotFoundError
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from ruvon.serialization import jsonable
from ruvon.settings import DEFAULT_DATABASE_URL
from ruvon_cli import settings

__all__ = [
    "EXIT_DATABASE",
    "EXIT_ERROR",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "console",
    "database_url",
    "fail",
    "json_argument",
    "open_builder",
    "open_store",
    "print_json",
    "run",
]

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_NOT_FOUND = 4

console = Console(highlight=False)
"""Human output (rich; no colours under ``NO_COLOR`` or when stdout is not a terminal)."""
errors = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A failure to report as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Stop the command with ``message`` on stderr and exit ``code``."""
    raise CliError(message, code)


def debug_enabled() -> bool:
    """``--debug`` (or ``RUVON_DEBUG=1``): show tracebacks."""
    return os.environ.get("RUVON_DEBUG", "") not in ("", "0", "false")


# -- the database and the definitions ------------------------------------------------------


def database_url(db: str | None) -> str:
    """The database a command works on; see the module."""
    if db:
        return _as_url(db)
    for name in ("RUVON_DATABASE_URL", "RUVON_DB_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    configured = settings.load().database_url()
    return configured or DEFAULT_DATABASE_URL


def _as_url(value: str) -> str:
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"  # a path: sqlite:////abs/path


@contextmanager
def importable_cwd() -> Iterator[None]:
    """Make the working directory importable (step modules beside ``config/``)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def config_dir(explicit: Path | None = None) -> Path | None:
    """``--config-dir``, else ``RUVON_CONFIG_DIR``, else ``./config`` if it exists."""
    if explicit is not None:
        return explicit
    env = os.environ.get("RUVON_CONFIG_DIR", "").strip()
    if env:
        return Path(env)
    default = Path("config")
    return default if default.is_dir() else None


def open_builder(
    db: str | None,
    *,
    registry: Any = None,
    directory: Path | None = None,
) -> WorkflowBuilder:
    """A builder on the command's database and definitions (``registry``: a registry mapping
    or file instead of the config directory's)."""
    provider = open_store(database_url(db))
    execution = _execution()
    if registry is not None:
        return WorkflowBuilder(
            registry, persistence_provider=provider, execution_provider=execution
        )
    return WorkflowBuilder(
        config_dir=config_dir(directory),
        persistence_provider=provider,
        execution_provider=execution,
    )


def open_store(url: str) -> PersistenceProvider:
    """A (not yet initialized) provider for ``url``; a command is one short client, so a
    PostgreSQL pool of a few connections, not the server-sized default."""
    from ruvon.settings import persistence_from_url

    if url.split(":", 1)[0].lower().startswith("postgres"):
        return persistence_from_url(url, pool_min_size=1, pool_max_size=4)
    return persistence_from_url(url)


def _execution() -> ExecutionProvider | None:
    """The execution provider the config file names (``ruvon config set-execution``); ``None``:
    the SDK's default (step functions run in the process, plain ones on the event loop)."""
    if settings.load().execution.get("provider") == "thread_pool":
        from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider

        return ThreadPoolExecutionProvider()
    return None


# -- running a command ---------------------------------------------------------------------


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine with the working directory importable; turn failures into
    one line on stderr and the exit code (a traceback only with ``--debug``)."""
    try:
        with importable_cwd():
            return asyncio.run(_run(work))
    except CliError as exc:
        _report(exc.message, exc.code, exc)
    except WorkflowNotFoundError as exc:
        _report(str(exc), EXIT_NOT_FOUND, exc)
    except PersistenceError as exc:
        _report(f"Database error: {exc}", EXIT_DATABASE, exc)
    except (RuvonError, ValueError, ImportError, OSError) as exc:
        _report(str(exc), EXIT_ERROR, exc)
    except KeyboardInterrupt:
        _report("Interrupted.", EXIT_ERROR, None)


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def _report(message: str, code: int, exc: BaseException | None) -> NoReturn:
    if exc is not None and debug_enabled():
        errors.print(traceback.format_exc(), markup=False, end="")
    errors.print(f"Error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


# -- input and output ----------------------------------------------------------------------


def json_argument(text: str | None, file: Path | None, name: str) -> dict[str, Any]:
    """A JSON object given inline (``text``) or in a file; exit 2 when it is not one."""
    if text is not None and file is not None:
        fail(f"Give either {name} or {name}-file, not both.", EXIT_USAGE)
    if file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            fail(f"Cannot read {file}: {exc.strerror}", EXIT_USAGE)
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", 2)
    if not isinstance(value, dict):
        fail(f"{name} must be a JSON object, not {type(value).__name__}.", EXIT_USAGE)
    return value


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout, and nothing else."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, ensure_ascii=False) + "\n")
