"""Step functions of the Celery tests' workflows. Each run is recorded as one JSON line in the
file named by ``RUVON_TEST_RECORD`` (process id, start and end on the wall clock), so a test
can count how often a function ran and in which process, and whether two ran at once."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel, Field


class OrderState(BaseModel):
    order_id: str
    amount: float = 0.0
    work_seconds: float = 0.0
    validated: bool = False
    charged_amount: float | None = None
    shipped: bool = False
    notified: bool = False
    done: bool = False
    parts: dict[str, int] = Field(default_factory=dict)


def _record(state: OrderState, context: Any, started: float, **extra: Any) -> None:
    path = os.environ.get("RUVON_TEST_RECORD")
    if not path:
        return
    line = {
        "workflow_id": context.workflow_id,
        "step": context.step_name,
        "order_id": state.order_id,
        "pid": os.getpid(),
        "start": started,
        "end": time.time(),
        **extra,
    }
    with open(path, "a", encoding="utf-8") as file:  # one short append: whole lines
        file.write(json.dumps(line) + "\n")


def _started(state: OrderState, context: Any) -> float:
    started = time.time()
    path = os.environ.get("RUVON_TEST_RECORD")
    if path:
        with open(path + ".started", "a", encoding="utf-8") as file:
            file.write(
                json.dumps(
                    {"step": context.step_name, "pid": os.getpid(), "order_id": state.order_id}
                )
                + "\n"
            )
    return started


def validate(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    _record(state, context, started)
    return {"validated": True}


def charge(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    time.sleep(state.work_seconds)
    _record(state, context, started)
    return {"charged_amount": round(state.amount * 1.1, 2)}


def ship(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    _record(state, context, started)
    return {"shipped": True}


async def notify(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    _record(state, context, started)
    return {"notified": True}


def finish(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    _record(state, context, started)
    return {"done": True}


def part(state: OrderState, context: Any) -> dict[str, Any]:
    started = _started(state, context)
    time.sleep(state.work_seconds)
    _record(state, context, started)
    return {"parts": {context.step_name: len(context.step_name)}}
