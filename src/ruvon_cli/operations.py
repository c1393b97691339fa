"""The commands that keep workflows moving, one process each (docs/crash-recovery.md,
docs/schedules.md): ``scan-zombies`` and ``zombie-daemon`` (CLI-21, CLI-22) over
:class:`~ruvon.zombie_scanner.ZombieScanner`, ``worker`` over :class:`~ruvon.worker.Worker`,
and ``scheduler run`` over :class:`~ruvon.scheduler.ScheduleRunner` (CRON-02).

The long-running ones stop on SIGINT (Ctrl+C) or SIGTERM after their current round and exit 0.
On a terminal they keep one status line with the last round; elsewhere (a pipe, a log file)
they print a line per round that did something (``zombie-daemon``: per scan). The SDK's
warnings and errors go to stderr, one line each (tracebacks with ``--debug``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table

from ruvon.database import database_location
from ruvon.providers.persistence import PersistenceProvider
from ruvon.scheduler import ScheduledRun, ScheduleRunner
from ruvon.worker import DrivenRun, Worker, WorkerRound
from ruvon.zombie_scanner import ZombieScanner
from ruvon_cli._context import console, database_url, open_builder, open_store, print_json, run
from ruvon_cli._loops import StatusLine, clock, json_line, now, sdk_logs, until_signal
from ruvon_cli.db import Db, Json

__all__ = ["register"]


class Policy(str, Enum):
    """What a recovery does with a zombie."""

    fail = "fail"
    resume = "resume"


PolicyOption = Annotated[
    Policy,
    typer.Option(
        "--policy",
        help=(
            "fail: the workflow ends FAILED_WORKER_CRASH (retry it with 'ruvon retry'). "
            "resume: it is ACTIVE again at its last committed step, for a worker to run."
        ),
    ),
]
Threshold = Annotated[
    float,
    typer.Option(
        "--threshold",
        min=0,
        help="Seconds without a heartbeat after which a running workflow is a zombie.",
    ),
]
Once = Annotated[bool, typer.Option("--once", help="Run one round, print it and exit.")]

scheduler_app = typer.Typer(
    help="Fire cron schedules: start the workflow of every due schedule, exactly once.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("scan-zombies")(scan_zombies)
    app.command("zombie-daemon")(zombie_daemon)
    app.command("worker")(worker)
    app.add_typer(scheduler_app, name="scheduler")


# -- scan-zombies ----------------------------------------------------------------------------


def scan_zombies(
    db: Db = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Recover the zombies found (default: a dry run).")
    ] = False,
    threshold: Threshold = 120.0,
    policy: PolicyOption = Policy.fail,
    json_output: Json = False,
) -> None:
    """Find zombie workflows, whose worker died in the middle of a step: ACTIVE or
    PENDING_ASYNC with a heartbeat (or an expired lease) older than the threshold. Without
    --fix nothing is written; with --fix each is recovered by the policy. Run it from cron, or
    run zombie-daemon.

    Example: ruvon scan-zombies --threshold 300 --fix
    """
    url = database_url(db)

    async def work() -> dict[str, Any]:
        async with _opened_store(url) as store:
            scanner = ZombieScanner(store, threshold, policy=policy.value)
            return await scanner.scan_and_recover(dry_run=not fix)

    with sdk_logs():
        summary = run(work)
    if json_output:
        print_json(summary)
        return
    dry_run = "yes (nothing written; --fix recovers)" if summary["dry_run"] else "no"
    for label, value in (
        ("Scan time", summary["scan_time"]),
        ("Duration", f"{summary['duration_seconds']:.3f} s"),
        ("Stale threshold", f"{summary['stale_threshold_seconds']:g} s"),
        ("Policy", summary["policy"]),
        ("Zombies found", summary["zombies_found"]),
        ("Zombies recovered", summary["zombies_recovered"]),
        ("Dry run", dry_run),
    ):
        console.print(f"{label + ':':<19}{value}", markup=False, soft_wrap=True)
    for zombie in summary["zombies"]:
        console.print(f"  {_zombie(zombie)}", markup=False, soft_wrap=True)


def _zombie(zombie: dict[str, Any]) -> str:
    return (
        f"{zombie['workflow_id']}  {zombie['workflow_type']}  {zombie['status']}  "
        f"step {zombie['current_step'] or '-'}  worker {zombie['worker_id'] or '-'}  "
        f"stale {zombie['stale_seconds']:g} s ({zombie['source']})"
    )


# -- zombie-daemon ---------------------------------------------------------------------------


def zombie_daemon(
    db: Db = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, help="Seconds between two scans.")
    ] = 60.0,
    threshold: Threshold = 120.0,
    policy: PolicyOption = Policy.fail,
) -> None:
    """Scan for zombie workflows and recover them every --interval seconds, until Ctrl+C or
    SIGTERM. Run one (or more: each zombie is recovered once) per database.

    Example: ruvon zombie-daemon --interval 30 --threshold 120 --policy resume
    """
    url = database_url(db)
    location = database_location(url)

    async def work() -> None:
        async with _opened_store(url) as store:
            scanner = ZombieScanner(store, threshold, policy=policy.value)
            console.print(
                f"Zombie daemon on {location}: a scan every {interval:g} s (stale threshold "
                f"{threshold:g} s, policy {policy.value}). Ctrl+C stops it.",
                markup=False,
                soft_wrap=True,
            )
            with until_signal(scanner.stop_daemon), StatusLine(every=True) as line:

                def show(summary: dict[str, Any]) -> None:
                    found, recovered = summary["zombies_found"], summary["zombies_recovered"]
                    line.show(
                        f"Last scan {clock()}: {found} zombie(s) found, {recovered} "
                        f"recovered ({summary['duration_seconds']:.3f} s); next in "
                        f"{interval:g} s",
                        [_zombie(zombie) for zombie in summary["zombies"]],
                    )

                await scanner.run_daemon(interval, on_scan=show)
        console.print("Zombie daemon stopped.")

    with sdk_logs():
        run(work)


# -- worker ----------------------------------------------------------------------------------


def worker(
    db: Db = None,
    once: Once = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.01, help="Seconds between two rounds.")
    ] = 10.0,
    idle_seconds: Annotated[
        float,
        typer.Option(
            "--idle-seconds",
            min=0,
            help=(
                "Take on an interrupted run only once it has not changed for this long "
                "(runs the scanner resumed are taken at once)."
            ),
        ),
    ] = 120.0,
    worker_id: Annotated[
        str | None,
        typer.Option("--worker-id", help="Who claims the runs. Default: host-pid-random."),
    ] = None,
    json_output: Json = False,
    celery: Annotated[
        bool,
        typer.Option(
            "--celery",
            help=(
                "Start a Celery worker of ruvon.celery_app instead (ASYNC steps sent by the "
                "Celery execution provider); broker from CELERY_BROKER_URL."
            ),
        ),
    ] = False,
    queues: Annotated[
        str, typer.Option("--queues", "-Q", help="With --celery: comma-separated queues.")
    ] = "default",
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, help="With --celery: processes (default: CPUs)"),
    ] = None,
) -> None:
    """Drive the runs that have automatic work pending and nobody to do it: runs the zombie
    scanner resumed, chains interrupted between steps, retries that are due, parents whose
    child settled. Loads workflow types from ./config (or RUVON_CONFIG_DIR) and step modules
    from the working directory. Runs until Ctrl+C or SIGTERM, or one round with --once.

    With --celery it starts a Celery worker instead, the same as `celery -A ruvon.celery_app
    worker -Q default`, on the database of --db / RUVON_DATABASE_URL (docs/deployment.md).

    Example: ruvon worker --poll-interval 5 --idle-seconds 60

    Example: ruvon worker --celery -Q default,eu-west-1 --concurrency 4
    """
    url = database_url(db)
    if celery:
        _celery_worker(url, queues, concurrency)
        return

    async def work() -> None:
        async with open_builder(db) as builder:
            runner = Worker(builder, worker_id=worker_id, idle_seconds=idle_seconds)
            if once:
                _print_round(runner.worker_id, await runner.run_once(), json_output)
                return
            if not json_output:
                console.print(
                    f"Worker {runner.worker_id} on {database_location(url)}: a round every "
                    f"{poll_interval:g} s (interrupted runs idle {idle_seconds:g} s or more). "
                    "Ctrl+C stops it.",
                    markup=False,
                    soft_wrap=True,
                )
            with until_signal(runner.stop), StatusLine(quiet=json_output) as line:

                def show(done: WorkerRound) -> None:
                    if json_output:
                        if done.driven or done.lost:
                            json_line({"at": now(), **done.to_dict()})
                        return
                    line.show(
                        f"Last round {clock()}: drove {len(done.driven)}, lost {done.lost}",
                        [_driven(driven) for driven in done.driven],
                    )

                await runner.run_forever(poll_interval, on_round=show)
            if not json_output:
                console.print("Worker stopped.")

    with sdk_logs():
        run(work)


def _celery_worker(url: str, queues: str, concurrency: int | None) -> None:
    """Run ``ruvon.celery_app``'s worker in this process (it reads the database URL from the
    environment when it is imported)."""
    os.environ["RUVON_DATABASE_URL"] = url
    try:
        from ruvon.celery_app import app
    except ImportError as exc:
        raise typer.BadParameter(
            f"--celery needs Celery: pip install 'ruvon-sdk[celery]' ({exc})"
        ) from exc
    argv = ["worker", "-Q", queues, "-l", "INFO"]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)


def _print_round(worker_id: str, done: WorkerRound, json_output: bool) -> None:
    if json_output:
        print_json({"worker_id": worker_id, **done.to_dict()})
        return
    if not done.driven and not done.lost:
        console.print("Nothing to do: no run has automatic work pending.")
        return
    console.print(
        f"Worker {worker_id}: drove {len(done.driven)} run(s), lost {done.lost} to other drivers",
        markup=False,
        soft_wrap=True,
    )
    for driven in done.driven:
        console.print(f"  {_driven(driven)}", markup=False, soft_wrap=True)


def _driven(driven: DrivenRun) -> str:
    error = f"  {driven.error}" if driven.error else ""
    return f"{driven.workflow_id}  {driven.reason}  -> {driven.status}{error}"


# -- scheduler run ---------------------------------------------------------------------------


@scheduler_app.command("run")
def run_schedules(
    db: Db = None,
    once: Once = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, help="Seconds between two rounds.")
    ] = 60.0,
    json_output: Json = False,
) -> None:
    """Start the workflow of every due schedule (and run its first step), then advance the
    schedule; every --interval seconds until Ctrl+C or SIGTERM, or once with --once. Any
    number of runners may share a database: each fire time starts one workflow.

    Example: ruvon scheduler run --interval 30
    """
    url = database_url(db)

    async def work() -> None:
        async with open_builder(db) as builder:
            runner = ScheduleRunner(builder)
            if once:
                _print_started(await runner.run_once(), json_output)
                return
            if not json_output:
                console.print(
                    f"Scheduler on {database_location(url)}: a round every {interval:g} s. "
                    "Ctrl+C stops it.",
                    markup=False,
                    soft_wrap=True,
                )
            with until_signal(runner.stop), StatusLine(quiet=json_output) as line:

                def show(started: list[ScheduledRun]) -> None:
                    if json_output:
                        for started_run in started:
                            json_line(_scheduled(started_run))
                        return
                    line.show(
                        f"Last round {clock()}: started {len(started)} workflow(s)",
                        [_started(started_run) for started_run in started],
                    )

                await runner.run_forever(interval, on_round=show)
            if not json_output:
                console.print("Scheduler stopped.")

    with sdk_logs():
        run(work)


def _print_started(started: list[ScheduledRun], json_output: bool) -> None:
    if json_output:
        print_json([_scheduled(started_run) for started_run in started])
        return
    if not started:
        console.print("No schedule is due.")
        return
    table = Table("Schedule", "Fire time")
    table.add_column("Workflow", no_wrap=True)
    table.add_column("Status")
    for started_run in started:
        status = started_run.status + (f" ({started_run.error})" if started_run.error else "")
        table.add_row(
            started_run.schedule_name,
            started_run.fire_time.isoformat(timespec="seconds"),
            started_run.workflow_id,
            status,
        )
    console.print(table)
    console.print(f"Started {len(started)} workflow(s).")


def _scheduled(started: ScheduledRun) -> dict[str, Any]:
    return {
        "schedule_name": started.schedule_name,
        "fire_time": started.fire_time.isoformat(),
        "workflow_id": started.workflow_id,
        "status": started.status,
        "error": started.error,
    }


def _started(started: ScheduledRun) -> str:
    error = f"  {started.error}" if started.error else ""
    fired = started.fire_time.isoformat(timespec="seconds")
    return f"{started.schedule_name} @ {fired}: {started.workflow_id} -> {started.status}{error}"


# -- shared ----------------------------------------------------------------------------------


@asynccontextmanager
async def _opened_store(url: str) -> AsyncIterator[PersistenceProvider]:
    """The persistence provider of ``url``, initialized (missing migrations applied), then
    closed."""
    store = open_store(url)
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()
