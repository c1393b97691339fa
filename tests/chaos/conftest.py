"""The Chaos workflow of the chaos tests: five ``automate_next`` steps, each of which logs
``<workflow id> <step> <run id>`` to a side-effect file when it starts, is in flight for
``STEP_SECONDS``, and returns its run id into the state field of its name."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ruvon import WorkflowBuilder
from tests.chaos.support import STEPS

STEP_SECONDS = 0.2
"""How long a step is in flight: a workflow takes a second, so 50 of them are always mid-way."""

STEPS_MODULE = """
import asyncio, uuid
from pydantic import BaseModel

LOG = {log!r}

class Chaos(BaseModel):
    n: int = 0
    s1: str | None = None
    s2: str | None = None
    s3: str | None = None
    s4: str | None = None
    s5: str | None = None

def _step(name):
    async def run(state, context):
        run_id = uuid.uuid4().hex
        with open(LOG, "a") as log:
            log.write(f"{{context.workflow_id}} {{name}} {{run_id}}\\n")
        await asyncio.sleep({seconds!r})
        return {{name: run_id}}
    run.__name__ = name
    return run

s1, s2, s3, s4, s5 = (_step(name) for name in ("s1", "s2", "s3", "s4", "s5"))
"""

REGISTRY = """
workflows:
  - type: Chaos
    config_file: chaos.yaml
    initial_state_model: chaos_steps.Chaos
"""

WORKFLOW = "workflow_type: Chaos\nsteps:\n" + "".join(
    f"  - name: {name}\n    function: chaos_steps.{name}\n    automate_next: true\n"
    for name in STEPS
)


@pytest.fixture
def chaos_dir(tmp_path: Path) -> Iterator[Path]:
    """A config dir with the Chaos workflow; its steps log to ``tmp_path/side_effects``."""
    config = tmp_path / "config"
    config.mkdir()
    module = STEPS_MODULE.format(log=str(tmp_path / "side_effects"), seconds=STEP_SECONDS)
    (tmp_path / "chaos_steps.py").write_text(textwrap.dedent(module))
    (config / "workflow_registry.yaml").write_text(REGISTRY)
    (config / "chaos.yaml").write_text(WORKFLOW)
    sys.path.insert(0, str(tmp_path))
    try:
        yield config
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("chaos_steps", None)
        WorkflowBuilder.clear_import_cache()
