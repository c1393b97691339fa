"""W5 with ASYNC steps on Celery worker processes, against the same workload in-process.

    pip install -e '.[dev,bench,celery]'
    python benchmarks/distributed.py                         # 1, 2, 4 workers, under a minute
    python benchmarks/distributed.py --repeat 3              # medians of 3 interleaved rounds
    python benchmarks/distributed.py --workers 2 --workflows 500 --no-inprocess

The workload is W5 (benchmarks/w5: five steps with trivial bodies, a ~5 KB order as state,
``automate_next`` on every step) with every step ``type: ASYNC``, written to a temporary config
directory. The benchmark's process starts each workflow (``start_workflow`` creates it and
dispatches Validate: one Celery message, the run committed PENDING_ASYNC) and keeps
``--concurrency`` workflows unfinished by polling ``count_workflows`` for finished ones; the
workers run each step, commit it and dispatch the next step through the broker themselves.

Cases, each on a fresh PostgreSQL schema (dropped after) and, for Celery, a fresh queue:

1. ``--workers`` (default 1, 2 and 4) Celery worker processes, each started with the stock
   command ``python -m celery -A ruvon.celery_app worker -P solo`` and stopped (SIGTERM, then
   SIGKILL) at the end of the case whatever happened. The solo pool, not prefork: a solo worker
   runs one task at a time in the very process that took the message, with its own event loop
   and database pool, so N worker processes are exactly N steps in flight and nothing else.
   Prefork ``--concurrency N`` would be N such children plus a parent that takes every message
   from Redis and hands it to a child over a pipe: one more hop per step and one more process
   competing for the two cores, which would blur what the broker itself costs. Workers log at
   WARNING (an INFO line per task would be measured too); their logs are scanned for warnings
   and errors afterwards.
2. The same ASYNC definition with ``ThreadPoolExecutionProvider`` in the benchmark's process
   (each ASYNC step runs in the background on a thread and reports on the same event loop), and
   W5 itself (STANDARD steps, benchmarks/w5/workload.py), with the same workflow count and
   concurrency: what the distribution costs against staying in one process.

Each case runs ``--warmup`` uncounted workflows first, then the measured ones, then
``--probe`` workflows one at a time (the round trip of a step when nothing queues). Reported
from the rows afterwards: workflows/s (first start to the poll that saw the last one finished),
p50/p99 workflow latency (``created_at`` → ``completed_at``), and the broker round trip per
step: from the step's ``STEP_DISPATCHED`` audit timestamp to its ``STEP_EXECUTED`` timestamp,
minus the duration recorded there (both timestamps are the PostgreSQL server's ``now()`` of
their commits). Every workflow is verified: COMPLETED, all five fields set, the expected audit
trail, and on Celery one COMPLETED task row per step. The table goes to stdout, everything to
``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import sys
import tempfile
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # makes the `distributed` and `w5` packages importable

try:
    from w5 import pg
    from w5.report import facts_text, machine_facts
    from w5.steps import state_json_bytes

    from distributed import deployment, report, runs
except ImportError as missing:  # the bench or celery extra is not installed
    sys.exit(
        f"{missing}. Install the benchmark dependencies first: pip install -e '.[dev,bench,celery]'"
    )

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_BROKER = "redis://127.0.0.1:6379/10"
EXTRA_PACKAGES = ("celery", "kombu", "redis")


def _workers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,4, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/distributed.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--workers", type=_workers, default=[1, 2, 4], help="Celery worker processes per case"
    )
    parser.add_argument("--workflows", type=int, default=200, help="measured workflows per case")
    parser.add_argument("--concurrency", type=int, default=50, help="workflows in flight")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted workflows per case")
    parser.add_argument(
        "--probe", type=int, default=20, help="workflows run one at a time after the measured run"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUVON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL server and database (a fresh schema per case, dropped after)",
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get("RUVON_BENCH_BROKER_URL", DEFAULT_BROKER),
        help="Celery broker (Redis); every case uses fresh queue names",
    )
    parser.add_argument(
        "--pool-size", type=int, default=50, help="PostgreSQL pool of the in-process cases"
    )
    parser.add_argument(
        "--worker-pool-size", type=int, default=4, help="RUVON_DB_POOL_MAX_SIZE of each worker"
    )
    parser.add_argument("--poll", type=float, default=0.01, help="seconds between polls")
    parser.add_argument(
        "--stall", type=float, default=60.0, help="give a case up when nothing finished so long"
    )
    parser.add_argument(
        "--no-inprocess", action="store_true", help="skip the thread-pool and STANDARD cases"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every case N times (medians are reported)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="default: benchmarks/results/distributed-<time>"
    )
    args = parser.parse_args(argv)
    if min(args.workflows, args.concurrency, args.repeat) < 1 or min(args.warmup, args.probe) < 0:
        parser.error("--workflows, --concurrency, --repeat must be >= 1, --warmup, --probe >= 0")
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    cases: list[tuple[str, int | None]] = [("celery", n) for n in args.workers]
    if not args.no_inprocess:
        cases += [("threads", None), ("standard", None)]
    return cases


async def run_case(settings: runs.Settings, kind: str, workers: int | None) -> dict[str, Any]:
    """One case; its result, or the reason it failed (the workers are stopped either way)."""
    labels = {
        "celery": f"ASYNC on Celery, {workers} worker{'s' if (workers or 0) > 1 else ''}",
        "threads": "ASYNC in-process (thread pool)",
        "standard": "W5 STANDARD in-process",
    }
    try:
        if kind == "celery":
            assert workers is not None
            return await runs.run_celery(settings, workers)
        if kind == "threads":
            return await runs.run_threads(settings)
        return await runs.run_standard(settings)
    except Exception as exc:
        return {
            "case": kind,
            "label": labels[kind],
            "workers": workers,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exception(exc),
        }


async def run_all(args: argparse.Namespace, settings: runs.Settings) -> list[dict[str, Any]]:
    """Every case ``--repeat`` times, the order reversed on every other round."""
    cases = plan(args)
    results = []
    for repeat in range(args.repeat):
        for kind, workers in cases if repeat % 2 == 0 else cases[::-1]:
            result = {**await run_case(settings, kind, workers), "repeat": repeat + 1}
            results.append(result)
            print(report.progress(len(results), len(cases) * args.repeat, result), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    try:
        postgres = asyncio.run(pg.server_facts(args.postgres_url))
    except Exception as exc:
        sys.exit(f"PostgreSQL at {args.postgres_url} is not reachable: {exc!r}")
    try:
        redis_version = deployment.redis_version(args.broker)
    except Exception as exc:
        sys.exit(f"The broker at {args.broker} is not reachable: {exc!r}")
    facts = machine_facts(postgres)
    facts["redis"] = redis_version
    for name in EXTRA_PACKAGES:
        try:
            facts["packages"][name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            facts["packages"][name] = None
    print(
        f"W5 ASYNC: {args.workflows} workflows (+{args.warmup} warm-up, +{args.probe} one at a "
        f"time), {args.concurrency} in flight, 5 ASYNC steps, state {state_json_bytes():,} "
        f"bytes as JSON; Celery workers {args.workers} (solo pool), broker {args.broker}"
    )
    print(facts_text(facts))
    print(f"Redis:      {redis_version}")

    with tempfile.TemporaryDirectory(prefix="ruvon-distributed-") as tmp:
        root = Path(tmp)
        settings = runs.Settings(
            workflows=args.workflows,
            concurrency=args.concurrency,
            warmup=args.warmup,
            probe=args.probe,
            postgres_url=args.postgres_url,
            broker=args.broker,
            pool_size=args.pool_size,
            worker_pool_size=args.worker_pool_size,
            poll_s=args.poll,
            stall_s=args.stall,
            config_dir=deployment.write_config(root / "config"),
            workdir=root,
        )
        results = asyncio.run(run_all(args, settings))

    summary = report.summarize(results)
    print()
    print(report.render(summary))
    print()
    print(report.LEGEND)
    path = args.json or HERE / "results" / f"distributed-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "W5 ASYNC on Celery workers",
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": {
            "workers": args.workers,
            "worker_pool": "solo",
            "workflows": args.workflows,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "probe": args.probe,
            "repeat": args.repeat,
            "postgres_url": args.postgres_url,
            "broker": args.broker,
            "pool_size": args.pool_size,
            "driver_pool_size": runs.DRIVER_POOL_SIZE,
            "worker_pool_size": args.worker_pool_size,
            "poll_s": args.poll,
            "state_json_bytes": state_json_bytes(),
            "steps": len(runs.STEPS),
        },
        "machine": facts,
        "summary": summary,
        "runs": results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"JSON: {path}")
    failed = [r for r in results if "error" in r or not r["verification"]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
