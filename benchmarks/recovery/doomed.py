"""The process that gets killed: it creates the workflows and drives them all at once with
``next_step()``, the engine's heartbeat on (``heartbeat_interval_seconds`` of the builder), until
every one is blocked in Charge; the benchmark then SIGKILLs it. It never ends by itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from recovery import steps
from recovery.store import provider_for
from ruvon import WorkflowBuilder

CONFIG_DIR = Path(__file__).resolve().parent / "config"
WORKFLOW_TYPE = "RecoveryBench"


async def run_doomed(spec: dict[str, Any]) -> None:
    """Create ``spec["workflows"]`` runs and drive them concurrently into their blocking step."""
    steps.configure(Path(spec["work_dir"]), hang=True)
    provider = provider_for(spec["database"], pool_max_size=spec["pool_max_size"])
    await provider.initialize()
    builder = WorkflowBuilder(
        config_dir=CONFIG_DIR,
        persistence_provider=provider,
        heartbeat_interval_seconds=spec["heartbeat_seconds"],
    )
    created = await asyncio.gather(
        *(
            builder.create_workflow(WORKFLOW_TYPE, {"order_id": f"R-{n:05d}"})
            for n in range(spec["workflows"])
        )
    )
    await asyncio.gather(*(workflow.next_step() for workflow in created))
    raise RuntimeError("every Charge step returned: they should block until the process dies")
