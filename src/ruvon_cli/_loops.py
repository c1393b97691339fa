"""What the long-running commands share: stopping at the end of a round on SIGINT or SIGTERM, a
status line of the last round, JSON lines, and the SDK's log records on stderr."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from rich.status import Status

from ruvon.serialization import jsonable
from ruvon_cli._context import console, debug_enabled

__all__ = ["StatusLine", "clock", "json_line", "now", "sdk_logs", "until_signal"]


@contextmanager
def until_signal(stop: Callable[[], object]) -> Iterator[None]:
    """Call ``stop`` on SIGINT or SIGTERM instead of interrupting (where the loop can)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C interrupts
            continue
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


class StatusLine:
    """The last round of a loop. On a terminal: one line rewritten in place, and the details
    (runs driven, zombies found) printed above it. Elsewhere: the details of each round and,
    if ``every``, its summary line too. ``quiet``: nothing."""

    def __init__(self, *, every: bool = False, quiet: bool = False) -> None:
        self._every = every
        self._quiet = quiet
        self._status: Status | None = None

    def __enter__(self) -> StatusLine:
        if console.is_terminal and not self._quiet:
            self._status = console.status("Waiting for the first round...")
            self._status.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def show(self, summary: str, details: list[str]) -> None:
        if self._quiet:
            return
        for detail in details:
            console.print(f"  {detail}", markup=False, soft_wrap=True)
        if self._status is not None:
            self._status.update(summary)
        elif self._every or details:
            console.print(summary, markup=False, soft_wrap=True)


class _OneLine(logging.Handler):
    """A log record as one line on stderr (looked up when written, so rich's live display
    can redirect it); the traceback only with ``--debug``."""

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self._debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname}: {record.getMessage()}"
            if self._debug and record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            elif record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


@contextmanager
def sdk_logs() -> Iterator[None]:
    """Show the SDK's log records (``ruvon.*``) while the command runs."""
    debug = debug_enabled()
    logger = logging.getLogger("ruvon")
    handler = _OneLine(debug)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


def clock() -> str:
    return datetime.now(timezone.utc).astimezone().strftime("%H:%M:%S")
