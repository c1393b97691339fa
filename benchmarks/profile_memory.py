"""Where the engine's time goes per step: W5 on the memory provider under a profiler.

    python benchmarks/profile_memory.py                       # cProfile, 2,000 workflows
    python benchmarks/profile_memory.py --profiler pyinstrument   # if pyinstrument is installed

The memory provider does no I/O, so everything measured is engine overhead (plus Pydantic and
the provider's dictionary writes). First an unprofiled run gives the honest time per workflow,
per step and per commit; then a profiled run prints the top functions by cumulative and by self
time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import io
import pstats
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # makes the `w5` package (steps, harness) importable

from w5.measure import drive  # noqa: E402
from w5.steps import STEP_FIELDS, OrderState, make_order  # noqa: E402
from w5.workload import (  # noqa: E402
    CONFIG_DIR,
    WORKFLOW_TYPE,
    CommitCounter,
    workflow_runner,
)

from ruvon import WorkflowBuilder  # noqa: E402
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider  # noqa: E402
from ruvon.state import dump_state, merge_state  # noqa: E402

STEPS = len(STEP_FIELDS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/profile_memory.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--top", type=int, default=25, help="rows per listing")
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--dump", type=Path, help="also write the cProfile stats to this file")
    return parser.parse_args(argv)


def ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def main(args: argparse.Namespace) -> None:
    provider = MemoryPersistenceProvider()
    counter = CommitCounter(provider)
    run_one = workflow_runner(provider)
    await drive(run_one, ids(args.warmup), args.concurrency)

    counter.reset()
    plain = await drive(run_one, ids(args.workflows), args.concurrency)
    commits = counter.total
    per_wf_us = plain.wall_s / args.workflows * 1e6
    print(
        f"W5 on memory, unprofiled: {args.workflows} workflows in {plain.wall_s:.3f} s = "
        f"{plain.per_second:,.0f} wf/s"
    )
    print(
        f"  {per_wf_us:,.1f} us per workflow (create + {STEPS} steps), "
        f"{per_wf_us / STEPS:,.1f} us per step (create spread over the steps), "
        f"{plain.wall_s / commits * 1e6:,.1f} us per commit ({commits / args.workflows:.1f}/wf)"
    )

    create_us, steps_us = await split_costs(provider, args.workflows)
    print(
        f"  one at a time: create_workflow {create_us:,.1f} us, next_step() running the "
        f"{STEPS} steps {steps_us:,.1f} us = {steps_us / STEPS:,.1f} us per step"
    )

    print("\nWhat W5's ~5 KB state costs per operation (unprofiled, us):")
    for label, cost in primitive_costs().items():
        print(f"  {cost:8.1f}  {label}")

    workload = ids(args.workflows)
    if args.profiler == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
        await drive(run_one, workload, args.concurrency)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
        return

    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    await drive(run_one, workload, args.concurrency)
    profile.disable()
    profiled_s = time.perf_counter() - started
    print(
        f"\nProfiled run: {profiled_s:.3f} s ({profiled_s / plain.wall_s:.1f}x the unprofiled "
        "time; the listings' us/step divide profiled time by "
        f"{args.workflows * STEPS} steps)"
    )
    if args.dump:
        profile.dump_stats(args.dump)
    for order, title in (("cumulative", "cumulative"), ("tottime", "self")):
        print(f"\nTop {args.top} by {title} time")
        print(listing(profile, order, args.top, args.workflows * STEPS))


async def split_costs(provider: MemoryPersistenceProvider, count: int) -> tuple[float, float]:
    """Mean microseconds of ``create_workflow`` and of the ``next_step()`` call that runs the
    five steps, timed separately, one workflow at a time."""
    builder = WorkflowBuilder(config_dir=CONFIG_DIR, persistence_provider=provider)
    create_s = steps_s = 0.0
    for workflow_id in ids(count):
        started = time.perf_counter()
        workflow = await builder.create_workflow(
            WORKFLOW_TYPE, make_order(workflow_id), workflow_id=workflow_id
        )
        created = time.perf_counter()
        await workflow.next_step()
        steps_s += time.perf_counter() - created
        create_s += created - started
    return create_s / count * 1e6, steps_s / count * 1e6


def primitive_costs() -> dict[str, float]:
    """Microseconds per call of the state operations the engine and the providers repeat."""
    data = make_order("W5-PROFILE")
    state = OrderState.model_validate(data)
    dumped = dump_state(state)
    cases: dict[str, Callable[[], Any]] = {
        "OrderState.model_validate(initial data)   create_workflow, once": lambda: (
            OrderState.model_validate(data)
        ),
        "dump_state(state) (model_dump mode=json)  every commit": lambda: dump_state(state),
        "merge_state(state, {field: True})         every step": lambda: merge_state(
            state, {"validated": True}, OrderState
        ),
        "orjson round trip of the state dict       memory provider, per load": lambda: orjson.loads(
            orjson.dumps(dumped)
        ),
        "orjson.dumps(state dict)                  SQL providers, every commit": lambda: (
            orjson.dumps(dumped)
        ),
    }
    costs = {}
    for label, call in cases.items():
        number = 2000
        best = min(timeit.repeat(call, number=number, repeat=5))
        costs[label] = best / number * 1e6
    return costs


def listing(profile: cProfile.Profile, order: str, top: int, steps: int) -> str:
    """The ``top`` functions by ``order`` with per-step microseconds added."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    stats.sort_stats(order)
    heading = ("ncalls", "self s", "cum s", "self us/step", "cum us/step")
    rows = ["{:>12} {:>8} {:>8} {:>12} {:>11}  function".format(*heading)]
    for func in stats.fcn_list[:top]:  # type: ignore[attr-defined]
        calls, primitive, self_s, cum_s, _ = stats.stats[func]  # type: ignore[attr-defined]
        ncalls = f"{calls}/{primitive}" if calls != primitive else str(calls)
        rows.append(
            f"{ncalls:>12} {self_s:8.3f} {cum_s:8.3f} {self_s / steps * 1e6:12.2f} "
            f"{cum_s / steps * 1e6:11.2f}  {describe(func)}"
        )
    return "\n".join(rows)


def describe(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.profiler == "pyinstrument" and importlib.util.find_spec("pyinstrument") is None:
        sys.exit("pyinstrument is not installed; use the default --profiler cprofile")
    asyncio.run(main(arguments))
