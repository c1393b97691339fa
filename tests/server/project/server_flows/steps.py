"""Step functions of the server tests' workflows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ruvon import StepContext
from server_flows.models import FlakyState, SlowState


def prepare(state: FlakyState, context: StepContext) -> dict[str, Any]:
    return {"prepared": state.prepared + 1}


def fetch(state: FlakyState, context: StepContext) -> dict[str, Any]:
    if Path(state.fail_marker).exists():
        raise RuntimeError(f"upstream unavailable ({state.fail_marker} exists)")
    return {"fetched": True}


def finish(state: FlakyState, context: StepContext) -> dict[str, Any]:
    return {"done": True}


def slow_prepare(state: SlowState, context: StepContext) -> dict[str, Any]:
    return {"prepared": True}


async def slow_sleep(state: SlowState, context: StepContext) -> dict[str, Any]:
    await asyncio.sleep(state.seconds)
    return {"slept": True}


def slow_done(state: SlowState, context: StepContext) -> dict[str, Any]:
    return {"done": True}
