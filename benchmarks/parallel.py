"""What the engine adds per PARALLEL task and per DAG stage, beyond the step functions.

    pip install -e '.[dev,bench]'
    python benchmarks/parallel.py                                # memory and PostgreSQL
    python benchmarks/parallel.py --backends memory --tasks 1,10,100,1000 --providers sync

PARALLEL: one PARALLEL step fans out over ``state.items`` (N integers); each task returns
``{f"k{i}": i}``. The baseline is the same workflow with one STANDARD step that makes the same N
calls and returns the same result, so both commit the same state once: (PARALLEL - STANDARD) / N
is the engine's cost per task beyond the function itself. The function's own cost (N direct
calls) is reported next to it. The issue's target: under 50 µs per task on memory.

DAG: Start -> K steps that depend on Start -> Join, one ``next_step()`` call; the K steps run as
one stage and commit once. Reported against Start -> Join alone (µs per stage, per step in the
stage) and against the same K + 2 steps run sequentially (one commit each).

Everything runs in this process: one store per backend (PostgreSQL: a fresh schema, dropped
after), one builder per execution provider on a config directory written to a temporary
directory, a warm-up per case, then ``--repeat`` rounds of every case, ``--workflows`` workflows
each, ``--concurrency`` in flight (default 1: one workflow at a time). Medians over the rounds.
Every workflow is checked to complete with every key set; the last of each case is read back.
With the sync provider on memory, one case (``--profile-case``, default the largest N) is also
run under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # makes the `parallel` and `w5` packages importable

try:
    from parallel import report, workloads
    from w5 import pg
    from w5.report import facts_text, machine_facts
    from w5.workload import ruvon_store
except ImportError as missing:  # the bench extra (psutil, asyncpg) is not installed
    sys.exit(f"{missing}. Install the benchmark dependencies first: pip install -e '.[dev,bench]'")

from ruvon.implementations.execution.sync import SyncExecutionProvider  # noqa: E402
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider  # noqa: E402
from ruvon.providers.execution import ExecutionProvider  # noqa: E402

BACKENDS = ("memory", "postgres")
PROVIDERS: dict[str, Callable[[], ExecutionProvider]] = {
    "sync": SyncExecutionProvider,
    "threads": ThreadPoolExecutionProvider,
}
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROFILE_TOP = 15


def _ints(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{unknown or text!r}: expected some of {allowed}")
        return names

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/parallel.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--backends", type=_names(BACKENDS), default=list(BACKENDS), help="memory,postgres"
    )
    parser.add_argument(
        "--providers",
        type=_names(tuple(PROVIDERS)),
        default=list(PROVIDERS),
        help="execution providers: sync (SyncExecutionProvider), threads (ThreadPool...)",
    )
    parser.add_argument("--tasks", type=_ints, default=[1, 10, 100], help="PARALLEL fan-out N")
    parser.add_argument("--stages", type=_ints, default=[2, 8], help="steps per DAG stage K")
    parser.add_argument("--workflows", type=int, default=100, help="per case and round")
    parser.add_argument("--warmup", type=int, default=30, help="uncounted workflows per case")
    parser.add_argument("--repeat", type=int, default=9, help="rounds of every case")
    parser.add_argument("--concurrency", type=int, default=1, help="workflows in flight")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument(
        "--profile-case",
        default=None,
        help="the case cProfile runs (par-N, std-N, dag-K, seq-K; default par-<largest N>)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default: benchmarks/results/parallel-<time>.json"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUVON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL server and database (a fresh schema is made there and dropped)",
    )
    args = parser.parse_args(argv)
    names = [case.name for case in workloads.cases(args.tasks, args.stages)]
    args.profile_case = args.profile_case or f"par-{max(args.tasks)}"
    if args.profile_case not in names:
        parser.error(f"--profile-case {args.profile_case!r}: expected one of {names}")
    if args.workflows < 1 or args.repeat < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--workflows, --repeat and --concurrency must be >= 1, --warmup >= 0")
    return args


async def measure(
    args: argparse.Namespace,
    config_dir: Path,
    backend: str,
    provider: str,
    store: Any,
    function_us: dict[int, float],
) -> dict[str, Any]:
    """Every case on one store with one execution provider: the rows and the raw samples."""
    execution = PROVIDERS[provider]()
    builder = workloads.make_builder(config_dir, store, execution)
    cases = workloads.cases(args.tasks, args.stages)
    runners = [workloads.Runner(builder, case) for case in cases]
    try:
        for runner in runners:
            if args.warmup:
                await workloads.time_case(runner, args.warmup, args.concurrency)
        samples: dict[str, list[float]] = {case.name: [] for case in cases}
        cpu: dict[str, list[float]] = {case.name: [] for case in cases}
        for round_number in range(args.repeat):
            order = runners if round_number % 2 == 0 else runners[::-1]
            for runner in order:
                gc.collect()
                wall, used = await workloads.time_case(runner, args.workflows, args.concurrency)
                samples[runner.case.name].append(wall)
                cpu[runner.case.name].append(used)
            print(
                f"  {backend}/{provider} round {round_number + 1}/{args.repeat}: "
                + ", ".join(f"{name} {values[-1]:,.0f}" for name, values in samples.items())
                + " us/wf",
                flush=True,
            )
        problems = [p for runner in runners if (p := await workloads.verify(builder, runner))]
        profile = None
        if backend == "memory" and provider == "sync" and not args.no_profile:
            chosen = next(r for r in runners if r.case.name == args.profile_case)
            count = max(20, min(args.workflows * 10, 20_000 // max(1, chosen.case.items)))
            profile = await workloads.profile_case(chosen, count, PROFILE_TOP)
            profile["where"] = f"{backend}, {provider} provider"
    finally:
        await execution.close()
    label = {"backend": backend, "provider": provider}
    return {
        **label,
        "parallel": report.parallel_rows(label, samples, cpu, args.tasks, function_us),
        "dag": report.dag_rows(label, samples, cpu, args.stages) if args.stages else [],
        "samples_us_per_wf": samples,
        "samples_cpu_us_per_wf": cpu,
        "verification": {"ok": not problems, "problems": problems},
        "profile": profile,
    }


async def run(args: argparse.Namespace, config_dir: Path) -> dict[str, Any]:
    notes: list[str] = []
    postgres = None
    backends = list(args.backends)
    if "postgres" in backends:
        try:
            postgres = await pg.server_facts(args.postgres_url)
        except Exception as exc:
            notes.append(f"PostgreSQL at {args.postgres_url} not reachable, skipped: {exc!r}")
            backends.remove("postgres")
    facts = machine_facts(postgres)
    print(facts_text(facts))
    print(
        f"PARALLEL N={args.tasks}, DAG K={args.stages}; {args.workflows} workflows per case and "
        f"round, {args.repeat} rounds, {args.warmup} warm-up, {args.concurrency} in flight"
    )
    function_us = {n: workloads.function_us(n) for n in args.tasks}
    results = []
    for backend in backends:
        async with ruvon_store(
            backend, postgres_url=args.postgres_url, pool_size=max(2, args.concurrency)
        ) as (store, _):
            for provider in args.providers:
                results.append(
                    await measure(args, config_dir, backend, provider, store, function_us)
                )
    return {"machine": facts, "notes": notes, "results": results}


def print_report(outcome: dict[str, Any]) -> None:
    results = outcome["results"]
    parallel = [row for result in results for row in result["parallel"]]
    dag = [row for result in results for row in result["dag"]]
    print("\nPARALLEL: us per workflow (create + one next_step), and per task:")
    print(report.table(parallel, report.PARALLEL_COLUMNS))
    for result in results:
        row = result["parallel"][-1]
        if "marginal_us_per_task" in row:
            print(
                f"  {result['backend']}/{result['provider']}: each further task costs "
                f"{row['marginal_us_per_task']:,.1f} us (N={row['tasks']} against the smallest N)"
            )
    if dag:
        print("\nDAG: Start -> K steps depending on Start -> Join, against Start -> Join alone:")
        print(report.table(dag, report.DAG_COLUMNS))
    memory = [r for r in parallel if r["backend"] == "memory" and r["provider"] == "sync"]
    if memory:
        met = [r["tasks"] for r in memory if r["target"] == "met"]
        missed = [
            f"N={r['tasks']}: {r['us_per_task']:,.1f} us" for r in memory if r["tasks"] not in met
        ]
        print(
            f"\nTarget < {report.TARGET_US_PER_TASK:.0f} us per task on memory (sync provider): "
            + (f"met for N={met}" if met else "not met for any N")
            + (f"; NOT met for {', '.join(missed)}" if missed else "")
        )
    for result in results:
        if result["profile"]:
            print()
            print(report.profile_text(result["profile"], PROFILE_TOP))
        if not result["verification"]["ok"]:
            print(f"VERIFICATION FAILED ({result['backend']}/{result['provider']}):")
            for problem in result["verification"]["problems"]:
                print("   ", problem)
    for note in outcome["notes"]:
        print("NOTE:", note)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="ruvon-parallel-") as tmp:
        config_dir = Path(tmp)
        workloads.write_config(config_dir, args.stages)
        outcome = asyncio.run(run(args, config_dir))
    print_report(outcome)
    path = args.json or HERE / "results" / f"parallel-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "PARALLEL tasks and DAG stages",
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": {
            "backends": args.backends,
            "providers": args.providers,
            "tasks": args.tasks,
            "stages": args.stages,
            "workflows": args.workflows,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "concurrency": args.concurrency,
            "postgres_url": args.postgres_url,
            "target_us_per_task_memory": report.TARGET_US_PER_TASK,
            "profile_case": None if args.no_profile else args.profile_case,
        },
        **outcome,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {path}")
    failed = [r for r in outcome["results"] if not r["verification"]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
