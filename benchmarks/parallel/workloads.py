"""The workflows measured, written as a config directory, and the timing of one case.

PARALLEL: ``Par`` has one PARALLEL step fanning out over ``state.items`` (N integers) with
``tasks.item_task``; ``Std`` has one STANDARD step, ``tasks.all_items``, that makes the same N
calls and returns the same result. Both commit once; their difference is the fan-out's cost.

DAG: ``Dag<K>`` is Start -> K steps that depend on Start -> Join (which depends on all K), one
``next_step()`` call; the K steps form one stage, committed once. ``Seq<K>`` is the same K + 2
steps without ``dependencies`` (one commit each), and ``Seq0`` is Start -> Join alone.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
import timeit
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from w5.measure import drive

from parallel.tasks import item_task
from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.execution import ExecutionProvider

TASKS = "parallel.tasks"


@dataclass(frozen=True)
class Case:
    """One workflow shape to time: its type, its initial data and its completed state's size."""

    name: str
    workflow_type: str
    items: int
    """The length of ``state.items`` (0 for the DAG workflows)."""
    expected_keys: int

    def initial(self) -> dict[str, Any]:
        return {"items": list(range(self.items))} if self.items else {}


def cases(task_counts: list[int], stage_widths: list[int]) -> list[Case]:
    """Every case of a run: PARALLEL and its STANDARD baseline per N, DAG and sequential per
    K, and the Start -> Join reference."""
    found = []
    for n in task_counts:
        found.append(Case(f"par-{n}", "Par", n, n + 1))
        found.append(Case(f"std-{n}", "Std", n, n + 1))
    for k in stage_widths:
        found.append(Case(f"dag-{k}", f"Dag{k}", 0, k + 2))
        found.append(Case(f"seq-{k}", f"Seq{k}", 0, k + 2))
    if stage_widths:
        found.append(Case("seq-0", "Seq0", 0, 2))
    return found


def _chain(width: int, *, dag: bool) -> list[dict[str, Any]]:
    """Start, ``width`` middle steps and Join; with ``dag``, the middle steps depend on Start
    only and Join on all of them."""
    middle = [f"B{i}" for i in range(width)]
    steps: list[dict[str, Any]] = []
    for name in ["Start", *middle, "Join"]:
        step: dict[str, Any] = {"name": name, "function": f"{TASKS}.mark"}
        if name != "Join":
            step["automate_next"] = True
        if dag and name in middle:
            step["dependencies"] = ["Start"]
        if dag and name == "Join" and middle:
            step["dependencies"] = middle
        steps.append(step)
    return steps


def write_config(directory: Path, stage_widths: list[int]) -> list[str]:
    """Write the registry and one file per workflow type into ``directory``; the types."""
    definitions: dict[str, list[dict[str, Any]]] = {
        "Par": [
            {
                "name": "Fan",
                "type": "PARALLEL",
                "iterate_over": "state.items",
                "task_function": f"{TASKS}.item_task",
                "item_var_name": "item",
            }
        ],
        "Std": [{"name": "Fan", "function": f"{TASKS}.all_items"}],
        "Seq0": _chain(0, dag=False),
    }
    for k in stage_widths:
        definitions[f"Dag{k}"] = _chain(k, dag=True)
        definitions[f"Seq{k}"] = _chain(k, dag=False)
    registry = []
    for workflow_type, steps in definitions.items():
        file_name = f"{workflow_type.lower()}.yaml"
        document = {"workflow_type": workflow_type, "workflow_version": "1", "steps": steps}
        (directory / file_name).write_text(yaml.safe_dump(document, sort_keys=False))
        registry.append(
            {
                "type": workflow_type,
                "config_file": file_name,
                "initial_state_model": "builtins.dict",
            }
        )
    text = yaml.safe_dump({"workflows": registry}, sort_keys=False)
    (directory / "workflow_registry.yaml").write_text(text)
    return list(definitions)


def make_builder(
    config_dir: Path, persistence: Any, execution: ExecutionProvider
) -> WorkflowBuilder:
    """A builder on the written definitions, all validated up front (a DefinitionError names
    every problem)."""
    builder = WorkflowBuilder(
        config_dir=config_dir, persistence_provider=persistence, execution_provider=execution
    )
    builder.validate()
    return builder


class Runner:
    """Runs the workflows of one case, checking each ends COMPLETED with every key set."""

    def __init__(self, builder: WorkflowBuilder, case: Case) -> None:
        self.builder = builder
        self.case = case
        self.last_id = ""

    async def __call__(self, workflow_id: str) -> None:
        workflow = await self.builder.create_workflow(
            self.case.workflow_type, self.case.initial(), workflow_id=workflow_id
        )
        await workflow.next_step()
        if workflow.status is not WorkflowStatus.COMPLETED:
            raise RuntimeError(f"{self.case.name}: workflow ended {workflow.status.value}")
        if len(workflow.state) != self.case.expected_keys:
            raise RuntimeError(f"{self.case.name}: state has {len(workflow.state)} keys")
        self.last_id = workflow_id


async def time_case(runner: Runner, count: int, concurrency: int) -> tuple[float, float]:
    """Microseconds per workflow, of wall-clock time and of this process's CPU time (all its
    threads): ``count`` workflows, ``concurrency`` in flight."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    cpu = time.process_time()
    done = await drive(runner, ids, concurrency)
    cpu = time.process_time() - cpu
    return done.wall_s / count * 1e6, cpu / count * 1e6


async def verify(builder: WorkflowBuilder, runner: Runner) -> str | None:
    """Read the case's last workflow back from the store; what is wrong with it, if anything."""
    stored = await builder.load_workflow(runner.last_id)
    if stored.status is not WorkflowStatus.COMPLETED:
        return f"{runner.case.name}: stored status {stored.status.value}"
    expected = {f"k{i}": i for i in range(runner.case.items)}
    if any(stored.state.get(key) != value for key, value in expected.items()):
        return f"{runner.case.name}: stored state lacks task results"
    if len(stored.state) != runner.case.expected_keys:
        return f"{runner.case.name}: stored state has {len(stored.state)} keys"
    return None


def function_us(count: int) -> float:
    """Microseconds of ``count`` direct calls of the task function (the best of 5 timings)."""
    state: dict[str, Any] = {"items": list(range(count))}

    def calls() -> None:
        for item in range(count):
            item_task(state, None, item)  # type: ignore[arg-type]

    number = max(1, 20_000 // count)
    return min(timeit.repeat(calls, number=number, repeat=5)) / number * 1e6


async def profile_case(runner: Runner, count: int, top: int) -> dict[str, Any]:
    """cProfile ``count`` workflows of ``runner``'s case one at a time; the top functions by
    self time and by cumulative time, in profiled µs per task (per workflow for the cases
    without items)."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    await drive(runner, ids, 1)
    profile.disable()
    wall = time.perf_counter() - started
    per = count * max(1, runner.case.items)
    stats = pstats.Stats(profile, stream=io.StringIO())
    listings: dict[str, list[dict[str, Any]]] = {}
    for order in ("tottime", "cumulative"):
        stats.sort_stats(order)
        rows = []
        for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
            calls, _, self_s, cum_s, _ = stats.stats[func]  # type: ignore[attr-defined]
            rows.append(
                {
                    "function": _describe(func),
                    "calls_per_task": round(calls / per, 2),
                    "self_us_per_task": round(self_s / per * 1e6, 2),
                    "cum_us_per_task": round(cum_s / per * 1e6, 2),
                }
            )
        listings[order] = rows
    unit = "task" if runner.case.items else "workflow"
    return {
        "case": runner.case.name,
        "workflows": count,
        "unit": unit,
        "profiled_s": round(wall, 3),
        **listings,
    }


def _describe(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    for marker in ("/site-packages/", "/src/", "/benchmarks/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        filename = re.sub(r"^.*/lib/python3\.\d+/", "", filename)  # the standard library
    return f"{filename}:{line}({name})"
