"""The benchmark's workflow: Reserve, Charge, Ship. Every step appends ``<workflow id> <step>
<pid>`` to the effects file (fsync'ed) before it returns, so the file is the record of every
outside effect that happened, which process caused it, and whether or not its commit landed.

In the doomed process (``configure(..., hang=True)``) Charge writes its effect, then a marker
``ready/<workflow id>``, then blocks until the process is killed: a step interrupted after its
outside effect and before its commit. In the recovering process it returns at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ruvon import StepContext

STEPS = ("Reserve", "Charge", "Ship")
"""The step names, in order."""
EFFECTS = "effects"
READY = "ready"

_work: Path | None = None
_hang = False


class Order(BaseModel):
    order_id: str
    reserved: bool = False
    charged: bool = False
    shipped: bool = False


def configure(work_dir: Path, *, hang: bool) -> None:
    """Where the effects and markers go, and whether Charge blocks (the doomed process)."""
    global _work, _hang
    _work, _hang = work_dir, hang
    (work_dir / READY).mkdir(parents=True, exist_ok=True)


def _work_dir() -> Path:
    if _work is None:
        raise RuntimeError("recovery.steps.configure() was not called")
    return _work


def _effect(context: StepContext) -> None:
    """Append ``<workflow id> <step> <pid>`` to the effects file, durably (one O_APPEND
    write)."""
    line = f"{context.workflow_id} {context.step_name} {os.getpid()}\n".encode()
    fd = os.open(_work_dir() / EFFECTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def reserve(state: Order, context: StepContext) -> dict[str, Any]:
    _effect(context)
    return {"reserved": True}


async def charge(state: Order, context: StepContext) -> dict[str, Any]:
    _effect(context)
    if _hang:
        (_work_dir() / READY / context.workflow_id).touch()
        await asyncio.sleep(24 * 3600)  # until SIGKILL; the engine's heartbeat goes on meanwhile
    return {"charged": True}


def ship(state: Order, context: StepContext) -> dict[str, Any]:
    _effect(context)
    return {"shipped": True}


def read_effects(work_dir: Path) -> list[tuple[str, str, int]]:
    """Every effect written so far, as (workflow id, step, pid of the process)."""
    path = work_dir / EFFECTS
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(wf, step, int(pid)) for wf, step, pid in (line.split(" ") for line in lines if line)]


def ready_ids(work_dir: Path) -> list[str]:
    """The workflows whose Charge step is blocked in the doomed process."""
    return os.listdir(work_dir / READY)
