"""A process killed (SIGKILL) in the middle of a LOOP iteration leaves the iterations before it
committed; another process resumes the loop at the interrupted iteration, and the finished
iterations never run again."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

from ruvon import WorkflowBuilder, WorkflowStatus
from tests.crash.support import open_provider, outlive_lease, run_until_killed

STEPS_MODULE = """
import os, pathlib, time
from pydantic import BaseModel, Field

WORK = pathlib.Path(os.environ["CRASH_WORK_DIR"])

class Tally(BaseModel):
    items: list[int] = Field(default_factory=list)
    total: int = 0
    loop_results: list[dict] = Field(default_factory=list)
    loop_iterations: int | None = None
    done: bool = False

def add(state, context, item):
    with open(WORK / "add_calls", "a") as calls:
        calls.write(f"{item}\\n")
    if context.loop_index == 2 and (WORK / "hang").exists():
        (WORK / "in_body").write_text(context.workflow_id)
        time.sleep(120)  # the test kills the process here
    return {"total": state.total + item}

def finish(state, context):
    return {"done": True}
"""

WORKFLOW = """
workflow_type: Tally
steps:
  - name: Each
    type: LOOP
    mode: ITERATE
    iterate_over: state.items
    automate_next: true
    loop_body:
      - name: Add
        function: loop_crash_steps.add
  - name: Finish
    function: loop_crash_steps.finish
"""

REGISTRY = """
workflows:
  - type: Tally
    config_file: tally.yaml
    initial_state_model: loop_crash_steps.Tally
"""

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from ruvon import WorkflowBuilder
    from ruvon.settings import persistence_from_url

    async def main(config_dir, url, schema):
        options = {"schema": schema} if schema else {}
        builder = WorkflowBuilder(config_dir=config_dir,
                                  persistence_provider=persistence_from_url(url, **options),
                                  lease_seconds=1.0, heartbeat_interval_seconds=0.5)
        workflow = await builder.create_workflow("Tally", {"items": [1, 2, 3, 4]})
        await workflow.next_step()  # iterations 0 and 1 commit, then 2 hangs until killed

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] or None))
    """
)


async def test_sigkill_mid_iteration_then_resume(
    tmp_path: Path, database: tuple[str, str | None]
) -> None:
    url, schema = database
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "loop_crash_steps.py").write_text(STEPS_MODULE)
    (config / "workflow_registry.yaml").write_text(REGISTRY)
    (config / "tally.yaml").write_text(WORKFLOW)
    (work / "hang").touch()
    env = {**os.environ, "CRASH_WORK_DIR": str(work), "PYTHONPATH": str(tmp_path)}

    args = [sys.executable, "-c", CHILD, str(config), url, schema or ""]
    assert run_until_killed(args, env, work, "in_body", "iteration 2") == -signal.SIGKILL
    workflow_id = (work / "in_body").read_text()

    sys.path.insert(0, str(tmp_path))
    os.environ["CRASH_WORK_DIR"] = str(work)
    try:
        provider = open_provider(url, schema)
        builder = WorkflowBuilder(config_dir=config, persistence_provider=provider)
        await provider.initialize()
        workflow = await builder.load_workflow(workflow_id)
        # Iterations 0 and 1 are committed; the loop is in iteration 2.
        assert workflow.status is WorkflowStatus.ACTIVE
        assert workflow.current_step == "Each"
        assert workflow.state.total == 3
        assert workflow.progress.loops["Each"] == {
            "next": 2,
            "loop_results": [{"total": 1}, {"total": 3}],
        }
        audit = [(e.event_type, e.step_name) for e in await provider.get_audit_log(workflow_id)]
        assert audit == [
            ("WORKFLOW_STARTED", None),
            ("STEP_PROGRESSED", "Each"),
            ("STEP_PROGRESSED", "Each"),
        ]

        # Recovery: iteration 2 runs again, 0 and 1 do not.
        (work / "hang").unlink()
        await outlive_lease(provider, workflow_id)  # the dead driver's lease runs out
        await workflow.next_step()
        assert workflow.status is WorkflowStatus.COMPLETED
        reread = await builder.load_workflow(workflow_id)
        assert reread.state.total == 10 and reread.state.done
        assert reread.state.loop_iterations == 4
        calls = (work / "add_calls").read_text().split()
        assert calls == ["1", "2", "3", "3", "4"]
        await builder.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("loop_crash_steps", None)
        os.environ.pop("CRASH_WORK_DIR", None)
        WorkflowBuilder.clear_import_cache()
