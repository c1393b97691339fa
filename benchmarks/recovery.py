"""Crash recovery: a worker process driving 100 workflows is SIGKILLed in the middle of a step;
how long until the zombie scanner notices, how long until a worker has finished them all, and
proof that nothing committed ran twice and nothing was lost, on SQLite and PostgreSQL.

    pip install -e '.[dev,bench]'
    python benchmarks/recovery.py                              # SQLite and PostgreSQL
    python benchmarks/recovery.py --backends sqlite --workflows 500 --threshold 5 --interval 1

Each measurement: a fresh database (a SQLite file, or a PostgreSQL schema dropped afterwards);
a child process (``--child``, started with ``asyncio.create_subprocess_exec``) creates the
workflows (Reserve -> Charge -> Ship, each writing ``<id> <step>`` to an fsync'ed effects file)
and drives them all at once with the engine's heartbeat every ``--heartbeat`` seconds; Charge
writes its effect and a marker, then blocks. Once every workflow has its marker *and* a
heartbeat row, the child is SIGKILLed. This process then runs a ``ZombieScanner(policy="resume",
stale_threshold_seconds=--threshold)`` every ``--interval`` seconds and ``--workers``
``Worker.run_once()`` loops until every workflow is COMPLETED (or ``--timeout``), and checks
every workflow's effects against its audit trail. The table goes to stdout, everything to
``--json``; the exit status is 1 if a committed step ran twice, a workflow was lost or a check
failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # makes the `recovery` and `w5` packages importable

try:
    from recovery.doomed import run_doomed
    from recovery.measure import ChildFailed, Settings, measure, spawn_command
    from recovery.report import LEGEND, failed, text
    from recovery.store import BACKENDS
    from w5 import pg
    from w5.report import facts_text, machine_facts
except ImportError as missing:  # the bench extra (psutil, asyncpg) is not installed
    sys.exit(f"{missing}. Install the benchmark dependencies first: pip install -e '.[dev,bench]'")

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/recovery.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help=f"comma-separated, of {', '.join(BACKENDS)}"
    )
    parser.add_argument(
        "--workflows", type=int, default=100, help="workflows in the killed worker (100)"
    )
    parser.add_argument(
        "--threshold", type=float, default=2.0, help="scanner stale_threshold_seconds (2.0)"
    )
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between the scanner's scans (0.5)"
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=0.5,
        help="heartbeat interval of the builders and workers (0.5); keep it under threshold/2",
    )
    parser.add_argument("--workers", type=int, default=1, help="Worker loops recovering (1)")
    parser.add_argument(
        "--poll", type=float, default=0.1, help="a worker's wait after an idle round (0.1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="longest recovery, seconds (120)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="measurements per backend (1)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="default: benchmarks/results/recovery-<timestamp>.json",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUVON_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL server and database (a fresh schema is made there and dropped)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; expected some of {list(BACKENDS)}")
    if args.workflows < 1 or args.workers < 1 or args.repeat < 1:
        parser.error("--workflows, --workers and --repeat must be at least 1")
    if min(args.threshold, args.interval, args.heartbeat, args.poll, args.timeout) <= 0:
        parser.error("--threshold, --interval, --heartbeat, --poll and --timeout must be > 0")
    if args.threshold <= 2 * args.heartbeat:
        parser.error("--threshold must be more than twice --heartbeat (one late beat is no crash)")
    args.backend_list = backends
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        workflows=args.workflows,
        threshold_s=args.threshold,
        interval_s=args.interval,
        heartbeat_s=args.heartbeat,
        poll_s=args.poll,
        workers=args.workers,
        timeout_s=args.timeout,
        postgres_url=args.postgres_url,
    )


def run_one(backend: str, settings: Settings) -> dict[str, Any]:
    """One measurement; its numbers, or the reason it failed (with the child's stderr)."""
    spawn = spawn_command(Path(__file__).resolve())
    with tempfile.NamedTemporaryFile("w+", prefix="recovery-child-", suffix=".log") as log:
        try:
            return asyncio.run(measure(backend, settings, spawn, log))
        except ChildFailed as exc:
            return {"backend": backend, "error": str(exc)}
        except Exception as exc:
            return {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}


def progress(result: dict[str, Any]) -> str:
    head = f"{result['backend']}:"
    if "error" in result:
        return f"{head} FAILED\n    " + str(result["error"]).replace("\n", "\n    ")
    verified = "verified" if result["verification"]["ok"] else "CHECKS FAILED"
    detected, finish = result["detected_all_s"], result["finish_s"]
    return (
        f"{head} {result['workflows']} in flight after {result['in_flight_after_s']:.2f} s; "
        + (
            f"all detected {detected:.3f} s after the kill"
            if detected is not None
            else f"{result['detected']} detected"
        )
        + (
            f", all COMPLETED {finish:.3f} s later"
            if finish is not None
            else f", {result['completed']} COMPLETED"
        )
        + f"; {result['duplicated_committed_steps']} duplicated, {result['lost']} lost; {verified}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        asyncio.run(run_doomed(json.loads(args.child)))
        return 0  # never reached: the doomed process is killed

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # One WARNING per recovered workflow is what this benchmark provokes; errors still show.
    logging.getLogger("ruvon.zombie_scanner").setLevel(logging.ERROR)
    started = datetime.now(timezone.utc)
    notes: list[str] = []
    postgres: dict[str, Any] | None = None
    backends = list(args.backend_list)
    if "postgres" in backends:
        try:
            postgres = asyncio.run(pg.server_facts(args.postgres_url))
        except Exception as exc:
            backends.remove("postgres")
            notes.append(f"PostgreSQL at {args.postgres_url} not reachable; skipped: {exc!r}")
    facts = machine_facts(postgres)
    settings = settings_from(args)
    print(
        f"Recovery: {args.workflows} workflows SIGKILLed in a step; scanner threshold "
        f"{args.threshold} s, a scan every {args.interval} s, heartbeat {args.heartbeat} s, "
        f"{args.workers} worker(s), repeat {args.repeat}"
    )
    print(facts_text(facts))
    for note in notes:
        print("NOTE:", note)

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        for backend in backends:
            result = {**run_one(backend, settings), "repeat": repeat + 1}
            runs.append(result)
            print(progress(result), flush=True)

    print()
    print(text(runs))
    print()
    print(LEGEND)
    for note in notes:
        print("NOTE:", note)

    path = args.json or HERE / "results" / f"recovery-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "recovery",
        "started": started.isoformat(),
        "finished": datetime.now(timezone.utc).isoformat(),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": {
            "backends": backends,
            "workflows": args.workflows,
            "threshold_s": args.threshold,
            "scan_interval_s": args.interval,
            "heartbeat_s": args.heartbeat,
            "workers": args.workers,
            "poll_s": args.poll,
            "timeout_s": args.timeout,
            "repeat": args.repeat,
            "postgres_url": args.postgres_url,
            "steps": ["Reserve", "Charge (killed here)", "Ship"],
        },
        "machine": facts,
        "runs": runs,
        "notes": notes,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {path}")
    return 1 if any(failed(run) for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
