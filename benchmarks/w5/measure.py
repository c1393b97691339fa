"""What every W5 run shares: the closed loop of N workers, latency percentiles and RSS sampling."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

MB = 1024 * 1024


@dataclass
class Drive:
    """The outcome of driving ``count`` workflows with ``concurrency`` in flight."""

    count: int
    concurrency: int
    wall_s: float
    latencies_s: list[float] = field(repr=False)
    ids: list[str] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.count / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "workflows": self.count,
            "concurrency": self.concurrency,
            "wall_s": round(self.wall_s, 4),
            "wf_per_s": round(self.per_second, 2),
            "p50_ms": round(percentile(ordered, 50) * 1000, 3),
            "p90_ms": round(percentile(ordered, 90) * 1000, 3),
            "p99_ms": round(percentile(ordered, 99) * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else 0.0,
            "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3) if ordered else 0.0,
        }


def percentile(ordered: list[float], pct: float) -> float:
    """The nearest-rank percentile of an already sorted list."""
    if not ordered:
        return 0.0
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


async def drive(
    run_one: Callable[[str], Awaitable[None]],
    ids: list[str],
    concurrency: int,
) -> Drive:
    """Run ``run_one(id)`` for every id with a fixed pool of ``concurrency`` worker tasks.

    The latency of one workflow is the time its ``run_one`` call takes (create to COMPLETED);
    the wall time is from the first start to the last completion.
    """
    pending = iter(ids)
    latencies: list[float] = []

    async def worker() -> None:
        for workflow_id in pending:  # one shared iterator: the event loop makes this safe
            started = time.perf_counter()
            await run_one(workflow_id)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(ids)))))
    wall = time.perf_counter() - started
    return Drive(len(ids), concurrency, wall, latencies, list(ids))


async def warm_then_measure(
    run_one: Callable[[str], Awaitable[None]],
    *,
    warmup: int,
    workflows: int,
    concurrency: int,
    reset_counters: Callable[[], None],
) -> tuple[Drive, RunMonitor, list[str]]:
    """The W5 sequence both engines follow: ``warmup`` uncounted workflows, counters reset, a
    garbage collection, then ``workflows`` measured ones under a :class:`RunMonitor`.

    Returns the measured drive, its monitor and every id run (warm-up first), for verification.
    """
    warm_ids = [str(uuid.uuid4()) for _ in range(warmup)]
    ids = [str(uuid.uuid4()) for _ in range(workflows)]
    if warm_ids:
        await drive(run_one, warm_ids, concurrency)
    reset_counters()
    gc.collect()
    with RunMonitor() as monitor:
        measured = await drive(run_one, ids, concurrency)
    return measured, monitor, warm_ids + ids


class RunMonitor:
    """Watches a measured run: this process's RSS (sampled on a thread) and CPU time, the local
    PostgreSQL server's CPU time (all its processes, whoever they serve), and the whole
    machine's CPU use, which shows when something else competed for the cores."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_bytes = 0
        self.peak_bytes = 0
        self._cpu: tuple[Any, Any, float, float] | None = None
        self._summary: dict[str, float] = {}
        self._postgres: dict[int, float] = {}

    @staticmethod
    def _postgres_cpu() -> dict[int, float]:
        """CPU seconds so far of every local PostgreSQL server process, by pid."""
        seconds = {}
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] in ("postgres", "postmaster"):
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                seconds[proc.pid] = times.user + times.system
        return seconds

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __enter__(self) -> RunMonitor:
        self.start_bytes = self.peak_bytes = self._process.memory_info().rss
        self._cpu = (
            self._process.cpu_times(),
            psutil.cpu_times(),
            os.getloadavg()[0],
            time.perf_counter(),
        )
        self._postgres = self._postgres_cpu()
        self._thread = threading.Thread(target=self._sample, name="w5-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)
        assert self._cpu is not None
        own0, machine0, load, started = self._cpu
        own1, machine1 = self._process.cpu_times(), psutil.cpu_times()
        wall = time.perf_counter() - started
        cores = psutil.cpu_count() or 1
        busy0 = sum(machine0) - machine0.idle - getattr(machine0, "iowait", 0.0)
        busy1 = sum(machine1) - machine1.idle - getattr(machine1, "iowait", 0.0)
        own = (own1.user - own0.user) + (own1.system - own0.system)
        server = sum(
            seconds - self._postgres.get(pid, 0.0) for pid, seconds in self._postgres_cpu().items()
        )
        self._summary = {
            "process_cpu_s": round(own, 3),
            "process_cpu_pct_of_one_core": round(100 * own / wall, 1) if wall else 0.0,
            "machine_cpu_busy_pct": round(100 * (busy1 - busy0) / (wall * cores), 1)
            if wall
            else 0.0,
            "postgres_server_cpu_pct_of_one_core": round(100 * server / wall, 1) if wall else 0.0,
            "loadavg_1m_at_start": round(load, 2),
        }

    def summary(self) -> dict[str, float]:
        """RSS when the measured run started, its peak during the run, the difference, the
        process's lifetime peak (``ru_maxrss``, which includes start-up and warm-up), and the
        CPU use during the run."""
        max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "rss_start_mb": round(self.start_bytes / MB, 1),
            "rss_peak_mb": round(self.peak_bytes / MB, 1),
            "rss_delta_mb": round((self.peak_bytes - self.start_bytes) / MB, 1),
            "process_max_rss_mb": round(max_rss_kb * 1024 / MB, 1),
            **self._summary,
        }
