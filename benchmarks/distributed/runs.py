"""The cases: W5 ASYNC on Celery workers or on the caller's thread pool, and W5 STANDARD.

An ASYNC case keeps ``concurrency`` workflows in flight: ``start_workflow`` returns as soon as
the first step is dispatched (PENDING_ASYNC), so the driver polls
``count_workflows(status=<terminal>)`` and starts a new workflow for each one that finished.
Everything measured afterwards comes from the rows: latency is ``created_at`` →
``completed_at``; a step's round trip is its ``STEP_DISPATCHED`` audit entry's timestamp to its
``STEP_EXECUTED`` entry's, minus that entry's recorded duration; on Celery the ``tasks`` row a
worker writes when it receives the message splits that into the broker leg (dispatch commit →
received) and the worker leg.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from w5.measure import RunMonitor, percentile
from w5.pg import quote_ident
from w5.steps import STEP_FIELDS, make_order
from w5.workload import run_ruvon, ruvon_store

from distributed.deployment import (
    WORKFLOW_TYPE,
    WorkerFleet,
    fresh_queue,
    running_fleet,
    write_config,
)
from ruvon import WorkflowBuilder
from ruvon.implementations.execution.celery import CeleryExecutionProvider, make_celery_app
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.models import TERMINAL_STATUSES
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.persistence import PersistenceProvider

TERMINAL = sorted(status.value for status in TERMINAL_STATUSES)
STEPS = ("Validate", "Price", "Reserve", "Invoice", "Ship")
EXPECTED_AUDIT = [
    "WORKFLOW_STARTED",
    *[kind for _ in STEPS for kind in ("STEP_DISPATCHED", "STEP_EXECUTED")],
    "WORKFLOW_COMPLETED",
]
DRIVER_POOL_SIZE = 10
"""The benchmark process's PostgreSQL pool in a Celery case (it only starts and polls)."""


@dataclass(frozen=True)
class Settings:
    """What every case shares (from the command line)."""

    workflows: int
    concurrency: int
    warmup: int
    probe: int
    postgres_url: str
    broker: str
    pool_size: int
    worker_pool_size: int
    poll_s: float
    stall_s: float
    config_dir: Path
    workdir: Path


class Stalled(RuntimeError):
    """No workflow finished for ``stall_s`` seconds."""


# -- driving ---------------------------------------------------------------------------------


async def drive_async(
    builder: WorkflowBuilder,
    store: PersistenceProvider,
    ids: Sequence[str],
    *,
    concurrency: int,
    poll_s: float,
    stall_s: float,
    check: Callable[[], None] | None = None,
    describe: Callable[[], Awaitable[str]] | None = None,
) -> float:
    """Start ``ids`` keeping ``concurrency`` of them unfinished; the seconds from the first
    start until the poll that saw the last one finished."""
    base = await store.count_workflows(status=TERMINAL)
    started = done = 0
    last_progress = time.monotonic()

    async def start(workflow_id: str) -> None:
        await builder.start_workflow(
            WORKFLOW_TYPE, make_order(workflow_id), workflow_id=workflow_id
        )

    began = time.perf_counter()
    while done < len(ids):
        room = min(len(ids), done + concurrency) - started
        if room > 0:
            batch, started = ids[started : started + room], started + room
            await asyncio.gather(*(start(workflow_id) for workflow_id in batch))
        else:
            await asyncio.sleep(poll_s)
        finished = await store.count_workflows(status=TERMINAL) - base
        if finished > done:
            done, last_progress = finished, time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            detail = await describe() if describe is not None else ""
            raise Stalled(
                f"no workflow finished for {stall_s:.0f} s ({done} of {len(ids)} done, "
                f"{started} started). {detail}"
            )
        if check is not None:
            check()
    return time.perf_counter() - began


# -- reading the rows back -------------------------------------------------------------------


@dataclass
class Rows:
    workflows: dict[str, asyncpg.Record]
    audit: dict[str, list[asyncpg.Record]]
    tasks: dict[str, list[asyncpg.Record]]
    total: int


async def read_rows(url: str, schema: str, ids: list[str]) -> Rows:
    s = quote_ident(schema)
    conn = await asyncpg.connect(url)
    try:
        workflows = await conn.fetch(
            "SELECT id, status, state, created_at, completed_at "
            f"FROM {s}.workflow_executions WHERE id = ANY($1::text[])",
            ids,
        )
        audit = await conn.fetch(
            "SELECT workflow_id, event_type, step_name, execution_duration_ms, timestamp "
            f"FROM {s}.workflow_audit_log WHERE workflow_id = ANY($1::text[]) ORDER BY id",
            ids,
        )
        tasks = await conn.fetch(
            "SELECT execution_id, step_name, status, created_at, completed_at "
            f"FROM {s}.tasks WHERE execution_id = ANY($1::text[]) ORDER BY created_at",
            ids,
        )
        total = await conn.fetchval(f"SELECT count(*) FROM {s}.workflow_executions")
    finally:
        await conn.close()
    by_audit: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in audit:
        by_audit[row["workflow_id"]].append(row)
    by_task: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in tasks:
        by_task[row["execution_id"]].append(row)
    return Rows({r["id"]: r for r in workflows}, by_audit, by_task, int(total))


async def status_counts(url: str, schema: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM "
            f"{quote_ident(schema)}.workflow_executions GROUP BY status ORDER BY status"
        )
    finally:
        await conn.close()
    return "Statuses: " + (", ".join(f"{r['status']} {r['n']}" for r in rows) or "no rows")


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000.0


def _stats(values: list[float], prefix: str) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {f"{prefix}_p50_ms": None, f"{prefix}_p99_ms": None}
    return {
        f"{prefix}_p50_ms": round(percentile(ordered, 50), 3),
        f"{prefix}_p99_ms": round(percentile(ordered, 99), 3),
    }


def timings(rows: Rows, ids: list[str]) -> dict[str, Any]:
    """Latency, step round trips and (Celery) the broker and worker legs of ``ids``."""
    latencies, round_trips, recorded, broker_legs, worker_legs = [], [], [], [], []
    by_step: dict[str, list[float]] = defaultdict(list)
    for workflow_id in ids:
        row = rows.workflows.get(workflow_id)
        if row is None or row["completed_at"] is None:
            continue
        latencies.append(_ms(row["completed_at"], row["created_at"]))
        dispatched: dict[str, datetime] = {}
        for entry in rows.audit.get(workflow_id, []):
            if entry["event_type"] == "STEP_DISPATCHED":
                dispatched[entry["step_name"]] = entry["timestamp"]
            elif entry["event_type"] == "STEP_EXECUTED" and entry["step_name"] in dispatched:
                duration = entry["execution_duration_ms"] or 0.0
                trip = _ms(entry["timestamp"], dispatched[entry["step_name"]]) - duration
                round_trips.append(trip)
                recorded.append(duration)
                by_step[entry["step_name"]].append(trip)
        for task in rows.tasks.get(workflow_id, []):
            sent = dispatched.get(task["step_name"])
            if sent is not None:
                broker_legs.append(_ms(task["created_at"], sent))
            if task["completed_at"] is not None:
                worker_legs.append(_ms(task["completed_at"], task["created_at"]))
    ordered = sorted(latencies)
    span = None
    done = [rows.workflows[i] for i in ids if i in rows.workflows]
    if done and all(r["completed_at"] is not None for r in done):
        span = (
            max(r["completed_at"] for r in done) - min(r["created_at"] for r in done)
        ).total_seconds()
    return {
        "p50_ms": round(percentile(ordered, 50), 3) if ordered else None,
        "p90_ms": round(percentile(ordered, 90), 3) if ordered else None,
        "p99_ms": round(percentile(ordered, 99), 3) if ordered else None,
        "max_ms": round(ordered[-1], 3) if ordered else None,
        "rows_span_s": round(span, 4) if span else None,
        "wf_per_s_rows": round(len(ids) / span, 2) if span else None,
        **_stats(round_trips, "step_rt"),
        "step_rt_mean_ms": round(statistics.fmean(round_trips), 3) if round_trips else None,
        "step_rt_p50_ms_by_step": {
            step: round(percentile(sorted(values), 50), 3) for step, values in by_step.items()
        },
        "recorded_duration_p50_ms": round(statistics.median(recorded), 3) if recorded else None,
        **_stats(broker_legs, "broker_leg"),
        **_stats(worker_legs, "worker_task"),
    }


def verify(rows: Rows, ids: list[str], *, celery: bool) -> dict[str, Any]:
    """Every workflow COMPLETED with its five fields set and its items intact, one dispatch
    and one execution per step in order; on Celery, one task row per step, COMPLETED."""
    errors: list[str] = []
    for workflow_id in ids:
        row = rows.workflows.get(workflow_id)
        if row is None:
            errors.append(f"{workflow_id}: not in the store")
            continue
        if row["status"] != "COMPLETED" or row["completed_at"] is None:
            errors.append(f"{workflow_id}: status {row['status']}")
        state = json.loads(row["state"]) if isinstance(row["state"], str) else row["state"]
        unset = [name for name in STEP_FIELDS if state.get(name) is not True]
        if unset or len(state.get("items", [])) != 20:
            errors.append(f"{workflow_id}: fields not set {unset}")
        kinds = [entry["event_type"] for entry in rows.audit.get(workflow_id, [])]
        steps = [
            entry["step_name"]
            for entry in rows.audit.get(workflow_id, [])
            if entry["event_type"] == "STEP_EXECUTED"
        ]
        if kinds != EXPECTED_AUDIT or steps != list(STEPS):
            errors.append(f"{workflow_id}: audit {kinds}")
        if celery:
            tasks = rows.tasks.get(workflow_id, [])
            statuses = Counter(task["status"] for task in tasks)
            if len(tasks) != len(STEPS) or statuses != Counter(COMPLETED=len(STEPS)):
                errors.append(f"{workflow_id}: task rows {dict(statuses)}")
    if rows.total != len(ids):
        errors.append(f"the schema holds {rows.total} workflows, expected {len(ids)}")
    return {"checked": len(ids), "ok": not errors, "errors": len(errors), "first": errors[:5]}


# -- CPU of the other servers ----------------------------------------------------------------


class ProcessCpu:
    """CPU seconds of every local process with one of ``names`` (e.g. the Redis server)."""

    def __init__(self, *names: str) -> None:
        self.names = names
        self._start: dict[int, float] = {}
        self._began = 0.0

    def _now(self) -> dict[int, float]:
        seconds = {}
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in self.names:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                seconds[proc.pid] = times.user + times.system
        return seconds

    def start(self) -> None:
        self._start, self._began = self._now(), time.perf_counter()

    def pct_of_one_core(self) -> float:
        wall = time.perf_counter() - self._began
        used = sum(s - self._start.get(pid, 0.0) for pid, s in self._now().items())
        return round(100 * used / wall, 1) if wall > 0 else 0.0


# -- the cases -------------------------------------------------------------------------------


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def _measure_async(
    settings: Settings,
    builder: WorkflowBuilder,
    store: PersistenceProvider,
    schema: str,
    fleet: WorkerFleet | None,
) -> dict[str, Any]:
    """Warm-up, the measured run under a monitor, the one-at-a-time probe, the rows."""

    def check() -> None:
        if fleet is not None and len(fleet.alive()) < fleet.count:
            raise RuntimeError(f"a worker exited; alive: {fleet.alive()}")

    async def describe() -> str:
        return await status_counts(settings.postgres_url, schema)

    async def drive(ids: list[str], concurrency: int) -> float:
        return await drive_async(
            builder,
            store,
            ids,
            concurrency=concurrency,
            poll_s=settings.poll_s,
            stall_s=settings.stall_s,
            check=check,
            describe=describe,
        )

    warm, measured, probe = _ids(settings.warmup), _ids(settings.workflows), _ids(settings.probe)
    if warm:
        await drive(warm, settings.concurrency)
    gc.collect()
    redis_cpu = ProcessCpu("redis-server")
    redis_cpu.start()
    if fleet is not None:
        fleet.mark_cpu()
    with RunMonitor() as monitor:
        wall = await drive(measured, settings.concurrency)
    workers_cpu = fleet.cpu_since_mark() if fleet is not None else None
    redis_pct = redis_cpu.pct_of_one_core()
    if probe:
        await drive(probe, 1)
    everything = warm + measured + probe
    rows = await read_rows(settings.postgres_url, schema, everything)
    probe_timings = timings(rows, probe) if probe else {}
    return {
        "workflows": len(measured),
        "concurrency": settings.concurrency,
        "warmup": len(warm),
        "wall_s": round(wall, 4),
        "wf_per_s": round(len(measured) / wall, 2),
        **timings(rows, measured),
        "probe": {
            "workflows": len(probe),
            "in_flight": 1,
            **{k: v for k, v in probe_timings.items() if not k.startswith("wf_per_s")},
        },
        **monitor.summary(),
        "workers_cpu_s": round(workers_cpu, 3) if workers_cpu is not None else None,
        "workers_cpu_pct_of_one_core": (
            round(100 * workers_cpu / wall, 1) if workers_cpu is not None else None
        ),
        "redis_server_cpu_pct_of_one_core": redis_pct,
        "verification": verify(rows, everything, celery=fleet is not None),
    }


async def run_celery(settings: Settings, workers: int) -> dict[str, Any]:
    """W5 ASYNC with ``workers`` solo-pool Celery worker processes on a fresh schema and a
    fresh queue; the workers are stopped whatever happens."""
    queue = fresh_queue()
    workdir = settings.workdir / f"celery-{workers}-{queue}"
    config_dir = write_config(workdir / "config")
    async with ruvon_store(
        "postgres", postgres_url=settings.postgres_url, pool_size=DRIVER_POOL_SIZE
    ) as (store, info):
        schema = info["schema"]
        fleet = WorkerFleet(
            count=workers,
            broker=settings.broker,
            database_url=f"{settings.postgres_url}?search_path={schema}",
            config_dir=config_dir,
            queue=queue,
            workdir=workdir,
            pool_max_size=settings.worker_pool_size,
        )
        try:
            with running_fleet(fleet):
                execution = CeleryExecutionProvider(
                    app=make_celery_app(settings.broker), default_queue=queue
                )
                result = await _run_builder(settings, config_dir, store, schema, execution, fleet)
        except Exception as exc:
            problems = "\n  ".join(fleet.log_problems() or ["(nothing)"])
            raise RuntimeError(f"{type(exc).__name__}: {exc}\nWorker log:\n  {problems}") from exc
        result["worker_log_problems"] = fleet.log_problems()
        result["worker_log_problem_lines"] = fleet.log_problem_count()
        result["workers_killed_at_stop"] = fleet.killed
    return {
        "case": "celery",
        "label": f"ASYNC on Celery, {workers} worker{'s' if workers > 1 else ''}",
        "workers": workers,
        "queue": queue,
        "schema": schema,
        "worker_pool": "solo",
        "worker_db_pool_max_size": settings.worker_pool_size,
        **result,
    }


async def run_threads(settings: Settings) -> dict[str, Any]:
    """W5 ASYNC in the benchmark's process: ``ThreadPoolExecutionProvider`` runs each step in
    the background and reports it on the same event loop."""
    async with ruvon_store(
        "postgres", postgres_url=settings.postgres_url, pool_size=settings.pool_size
    ) as (store, info):
        execution = ThreadPoolExecutionProvider()
        schema = info["schema"]
        result = await _run_builder(settings, settings.config_dir, store, schema, execution, None)
    return {
        "case": "threads",
        "label": "ASYNC in-process (thread pool)",
        "workers": None,
        "schema": info["schema"],
        **result,
    }


async def _run_builder(
    settings: Settings,
    config_dir: Path,
    store: PersistenceProvider,
    schema: str,
    execution: ExecutionProvider,
    fleet: WorkerFleet | None,
) -> dict[str, Any]:
    builder = WorkflowBuilder(
        config_dir=config_dir, persistence_provider=store, execution_provider=execution
    )
    builder.validate(WORKFLOW_TYPE)
    await execution.initialize()
    try:
        return await _measure_async(settings, builder, store, schema, fleet)
    finally:
        await execution.close()
        await builder.close()


async def run_standard(settings: Settings) -> dict[str, Any]:
    """W5 itself (STANDARD steps, one ``start_workflow`` call runs all five) on PostgreSQL,
    through ``benchmarks/w5/workload.py``."""
    result = await run_ruvon(
        "postgres",
        workflows=settings.workflows,
        concurrency=settings.concurrency,
        warmup=settings.warmup,
        postgres_url=settings.postgres_url,
        pool_size=settings.pool_size,
    )
    return {
        "case": "standard",
        "label": "W5 STANDARD in-process",
        "workers": None,
        **result,
    }
