"""A load check of the REST server: concurrent clients starting runs and reading them back.

    pip install -e '.[dev,bench]'
    python benchmarks/server.py                         # 50 clients, 20 s, 1 uvicorn worker
    python benchmarks/server.py --clients 100 --seconds 30 --workers 2

The real server (``uvicorn ruvon_server.main:app``) runs in a subprocess on a free port, in a
project directory holding the order-approval example, on a fresh PostgreSQL schema (dropped
afterwards). Each client (its own ``httpx.AsyncClient``) loops: ``POST /api/v1/workflow/start``
of a small order (validated, auto-approved and completed within the request: four steps, every
one committed), then ``GET /api/v1/workflow/{id}/status`` of the run it started. After a
warm-up, it counts requests per second (total and per kind), latency percentiles per kind,
non-2xx answers by status, and the CPU the server, PostgreSQL and the load generator used.
The table goes to stdout, everything (with the machine) to ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "order_approval"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the `w5` package: machine facts, table, PostgreSQL chores

try:
    import asyncpg
    import httpx
    import psutil
    from w5 import pg, report
except ImportError as missing:
    sys.exit(f"{missing}. Install the benchmark dependencies first: pip install -e '.[dev,bench]'")

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
ORDER = {
    "order_id": "BENCH-1",
    "customer": "ada",
    "items": [{"sku": "pen", "quantity": 3, "unit_price": 2.5}],
}
STARTUP_SECONDS = 60.0
KINDS = ("start", "status")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/server.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds run first, not counted")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUVON_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a database the benchmark may create a schema in",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--json", type=Path, default=None, help="default: benchmarks/results/server-<time>.json"
    )
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- the server


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(EXAMPLE / "config", root / "config")
    shutil.copytree(EXAMPLE / "order_approval", root / "order_approval")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    project: Path, database_url: str, workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUVON_")}
    env["RUVON_DATABASE_URL"] = database_url
    command = [
        sys.executable, "-m", "uvicorn", "ruvon_server.main:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--workers", str(workers), "--no-access-log",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"The server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    sys.exit(f"The server did not become healthy in {STARTUP_SECONDS} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


# --------------------------------------------------------------------------- CPU accounting


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _postgres_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith("postgres"):
            found.append(process)
    return found


class CpuMeter:
    """CPU seconds used by groups of processes between :meth:`start` and :meth:`stop` (new
    processes, such as PostgreSQL backends of new connections, count from when first seen)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seen: dict[str, dict[int, tuple[psutil.Process, float]]] = {}
        self.last: dict[str, dict[int, float]] = {}

    def _groups(self) -> dict[str, list[psutil.Process]]:
        return {
            "server": _tree(self.server_pid),
            "postgres": _postgres_processes(),
            "load_generator": [psutil.Process()],
        }

    @staticmethod
    def _cpu(process: psutil.Process) -> float | None:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return float(times.user + times.system)

    def sample(self) -> None:
        for group, processes in self._groups().items():
            seen = self.seen.setdefault(group, {})
            last = self.last.setdefault(group, {})
            for process in processes:
                cpu = self._cpu(process)
                if cpu is None:
                    continue
                if process.pid not in seen:
                    seen[process.pid] = (process, cpu)
                last[process.pid] = cpu

    def used(self) -> dict[str, float]:
        self.sample()
        return {
            group: sum(self.last[group][pid] - start for pid, (_, start) in seen.items())
            for group, seen in self.seen.items()
        }


# --------------------------------------------------------------------------- the load


@dataclass
class Tally:
    measuring: bool = False
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    statuses: dict[str, Counter[int | str]] = field(
        default_factory=lambda: {k: Counter() for k in KINDS}
    )

    def record(self, kind: str, seconds: float, status: int | str) -> None:
        if not self.measuring:
            return
        self.latencies[kind].append(seconds)
        self.statuses[kind][status] += 1


async def client_loop(url: str, tally: Tally, stop: asyncio.Event, number: int) -> None:
    headers = {"X-User-ID": f"bench-{number}"}
    async with httpx.AsyncClient(base_url=url, timeout=60.0, headers=headers) as client:
        body = {"workflow_type": "OrderApproval", "initial_data": ORDER}
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await client.post("/api/v1/workflow/start", json=body)
                status: int | str = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            tally.record("start", time.perf_counter() - started, status)
            if status != 201:
                continue
            workflow_id = response.json()["workflow_id"]
            started = time.perf_counter()
            try:
                read = await client.get(f"/api/v1/workflow/{workflow_id}/status")
                status = read.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            tally.record("status", time.perf_counter() - started, status)


async def sample_cpu(meter: CpuMeter, stop: asyncio.Event) -> None:
    """Catch short-lived PostgreSQL backends and new workers while the load runs."""
    while not stop.is_set():
        meter.sample()
        await asyncio.sleep(0.5)


async def run_load(
    url: str, clients: int, warmup: float, seconds: float, meter: CpuMeter
) -> tuple[Tally, float, dict[str, float]]:
    tally = Tally()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client_loop(url, tally, stop, n)) for n in range(clients)]
    await asyncio.sleep(warmup)
    meter.sample()
    sampler = asyncio.create_task(sample_cpu(meter, stop))
    tally.measuring = True
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    tally.measuring = False
    elapsed = time.perf_counter() - began
    cpu = meter.used()
    stop.set()
    await asyncio.gather(*tasks, sampler)
    return tally, elapsed, cpu


# --------------------------------------------------------------------------- the report


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 2)


def rows_of(tally: Tally, elapsed: float) -> list[dict[str, Any]]:
    rows = []
    for kind in (*KINDS, "total"):
        kinds = KINDS if kind == "total" else (kind,)
        latencies = [value for k in kinds for value in tally.latencies[k]]
        statuses: Counter[int | str] = Counter()
        for k in kinds:
            statuses.update(tally.statuses[k])
        errors = {
            str(status): count
            for status, count in sorted(statuses.items(), key=str)
            if not (isinstance(status, int) and 200 <= status < 300)
        }
        rows.append(
            {
                "kind": kind,
                "requests": len(latencies),
                "requests_per_s": round(len(latencies) / elapsed, 1),
                "p50_ms": _percentile(latencies, 50),
                "p95_ms": _percentile(latencies, 95),
                "p99_ms": _percentile(latencies, 99),
                "errors": sum(errors.values()),
                "errors_by_status": ", ".join(f"{s}: {n}" for s, n in errors.items()) or "-",
            }
        )
    return rows


COLUMNS = [
    ("kind", "request", 0),
    ("requests", "count", 0),
    ("requests_per_s", "req/s", 1),
    ("p50_ms", "p50 ms", 1),
    ("p95_ms", "p95 ms", 1),
    ("p99_ms", "p99 ms", 1),
    ("errors", "errors", 0),
    ("errors_by_status", "by status", 0),
]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or HERE / "results" / f"server-{stamp}.json"
    schema = f"ruvon_bench_server_{uuid.uuid4().hex[:12]}"
    facts = report.machine_facts(asyncio.run(pg.server_facts(args.postgres_url)))
    separator = "&" if "?" in args.postgres_url else "?"
    database_url = f"{args.postgres_url}{separator}search_path={schema}"
    asyncio.run(_create_schema(args.postgres_url, schema))
    scratch = Path(tempfile.mkdtemp(prefix="ruvon-bench-server-"))
    process = None
    try:
        project = make_project(scratch / "project")
        process, url = start_server(project, database_url, args.workers, scratch / "server.log")
        meter = CpuMeter(process.pid)
        print(
            f"Server {url}, {args.workers} worker(s), PostgreSQL schema {schema}; "
            f"{args.clients} clients, {args.warmup:g} s warm-up, {args.seconds:g} s measured."
        )
        tally, elapsed, cpu = asyncio.run(
            run_load(url, args.clients, args.warmup, args.seconds, meter)
        )
        log = (scratch / "server.log").read_text(errors="replace")
    finally:
        if process is not None:
            stop_server(process)
        asyncio.run(pg.drop_schema(args.postgres_url, schema))
        shutil.rmtree(scratch, ignore_errors=True)
    rows = rows_of(tally, elapsed)
    cores = {group: round(seconds / elapsed, 2) for group, seconds in cpu.items()}
    print()
    print(report.table(rows, COLUMNS))
    print()
    print(
        "CPU (cores busy on average): "
        + ", ".join(f"{group} {value:.2f}" for group, value in cores.items())
        + f" of {os.cpu_count()}"
    )
    print()
    print(report.facts_text(facts))
    if log.strip():
        print(f"\nServer log ({len(log.splitlines())} lines), the last ones:")
        print("\n".join(log.splitlines()[-10:]))
    result = {
        "benchmark": "server",
        "time": stamp,
        "clients": args.clients,
        "workers": args.workers,
        "warmup_s": args.warmup,
        "measured_s": round(elapsed, 3),
        "rows": rows,
        "cpu_cores_busy": cores,
        "cpu_seconds": {group: round(value, 3) for group, value in cpu.items()},
        "machine": facts,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nWritten: {out}")
    return 0


async def _create_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {pg.quote_ident(schema)}")
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
