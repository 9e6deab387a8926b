"""Shoal's side of the throughput benchmark: one role per process, driven by throughput.py.

Every system's bench script (this one, peers/arq_bench.py, peers/bullmq/bench.mjs) takes the
same roles and flags and prints JSON lines on stdout (``{"event": "ready"}`` once a worker
is up, ``{"event": "result", ...}`` with the figures), so the orchestrator treats them alike.
Clocks: CLOCK_MONOTONIC nanoseconds (``time.monotonic_ns`` here, ``process.hrtime`` in Node).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

# Benchmark the checkout this file is in, even when another one is installed (editable).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_protocol import (
    PROBE_TIMEOUT_S,
    ROLES,
    STARTED_KEY,
    WARMUP_SINGLE,
    argument_parser,
    emit,
    probe_started_ns,
    until_terminated,
)

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.consuming.processor import Job
from worker_runtime.consuming.worker import Worker
from worker_runtime.producing.queue import Queue

WARMUP_BULK = 1000
#: Completed records kept, matched in BullMQ (removeOnComplete: {count: 1000}).
KEEP_COMPLETED = 1000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argument_parser(__doc__.splitlines()[0], (*ROLES, "observability-check"))
    parser.add_argument(
        "--observability", action="store_true", help="metrics, heartbeats and status store on"
    )
    return parser.parse_args(argv)


# --- observability ------------------------------------------------------------------------


def observability_available() -> bool:
    try:
        from worker_runtime.observing.observability import Observability
    except ImportError:
        return False
    return hasattr(Observability, "from_settings") and hasattr(Observability, "install")


def install_observability(worker: Worker) -> None:
    """Metrics, heartbeat, probe server (any free port), alerting's log sink and the SQLite
    status store, as `shoal worker` wires them; per-job log lines off (they measure the
    log sink, not the runtime)."""
    from worker_runtime.observing.observability import Observability

    store_dir = tempfile.mkdtemp(prefix="shoal-bench-")
    atexit.register(shutil.rmtree, store_dir, ignore_errors=True)
    store = Path(store_dir) / "status.db"
    settings = worker.settings.model_copy(
        update={
            "metrics_enabled": True,
            "status_store_enabled": True,
            "status_store_url": f"sqlite+aiosqlite:///{store}",
            "health_checks_enabled": True,
            "health_host": "127.0.0.1",
            "health_port": 0,
        }
    )
    Observability.from_settings(settings, job_logs=False).install(worker)


# --- workers ------------------------------------------------------------------------------


@dataclass
class DrainState:
    target: int
    first_ns: int = 0
    first_cpu: float = 0.0
    handled: int = 0


def make_worker(args: argparse.Namespace) -> Worker:
    # gc.freeze() once started, as `shoal worker` does (both columns alike).
    settings = WorkerSettings.model_validate(
        {"REDIS_URL": args.redis_url, "WORKER_GC_FREEZE": True}
    )
    return Worker(
        settings=settings,
        concurrency=args.concurrency,
        max_jobs_per_worker=args.concurrency,
    )


async def start_worker(worker: Worker, args: argparse.Namespace) -> None:
    if args.observability:
        if not observability_available():
            raise SystemExit("observability is not available in worker_runtime yet")
        install_observability(worker)
    await worker.start()


async def drain_worker(args: argparse.Namespace) -> None:
    worker = make_worker(args)
    state = DrainState(target=args.jobs)
    handled_all = asyncio.Event()

    @worker.processor(args.queue, config=QueueConfig(keep_completed=KEEP_COMPLETED))
    async def noop(job: Job[Any]) -> None:
        if not state.first_ns:
            state.first_ns = time.monotonic_ns()
            state.first_cpu = time.process_time()
        state.handled += 1
        if state.handled >= state.target:
            handled_all.set()

    await start_worker(worker, args)
    await handled_all.wait()
    # Every handler has returned; a job is complete once its (batched) ack reached Redis.
    # Shoal has no "acknowledged" event to hook, so poll its counts (tail only: ~1 ms).
    async with Queue(args.queue, redis_url=args.redis_url) as queue:
        while True:
            if (await queue.counts())["completed"] >= args.jobs:
                break
            await asyncio.sleep(0.0005)
        last_ns = time.monotonic_ns()
    cpu_us = (time.process_time() - state.first_cpu) / args.jobs * 1e6
    emit("result", jobs=args.jobs, seconds=(last_ns - state.first_ns) / 1e9, cpu_us_per_job=cpu_us)
    await until_terminated()
    await worker.stop()


async def latency_worker(args: argparse.Namespace) -> None:
    worker = make_worker(args)
    signal_client = aioredis.Redis.from_url(args.redis_url)

    @worker.processor(args.queue, config=QueueConfig(keep_completed=KEEP_COMPLETED))
    async def probe(job: Job[Any]) -> None:
        started = time.monotonic_ns()
        await signal_client.lpush(STARTED_KEY, f"{job.data['i']} {started}")

    await start_worker(worker, args)
    emit("ready")
    await until_terminated()
    await worker.stop()
    await signal_client.aclose()


# --- producers ----------------------------------------------------------------------------


async def fill(args: argparse.Namespace) -> None:
    async with Queue(args.queue, redis_url=args.redis_url) as queue:
        await queue.enqueue_many([{"i": i} for i in range(args.jobs)])
    emit("result", jobs=args.jobs)


async def enqueue_single(args: argparse.Namespace) -> None:
    async with (
        Queue(args.queue, redis_url=args.redis_url) as queue,
        Queue(f"{args.queue}-warmup", redis=queue.redis) as warm,
    ):
        for i in range(WARMUP_SINGLE):
            await warm.enqueue({"i": i})
        payloads = [{"i": i} for i in range(args.jobs)]
        started = time.perf_counter()
        for payload in payloads:
            await queue.enqueue(payload)
        seconds = time.perf_counter() - started
    emit("result", jobs=args.jobs, seconds=seconds)


async def enqueue_bulk(args: argparse.Namespace) -> None:
    async with (
        Queue(args.queue, redis_url=args.redis_url) as queue,
        Queue(f"{args.queue}-warmup", redis=queue.redis) as warm,
    ):
        await warm.enqueue_many([{"i": i} for i in range(WARMUP_BULK)])
        payloads = [{"i": i} for i in range(args.jobs)]
        started = time.perf_counter()
        await queue.enqueue_many(payloads)
        seconds = time.perf_counter() - started
    emit("result", jobs=args.jobs, seconds=seconds)


async def latency_producer(args: argparse.Namespace) -> None:
    latencies_ms: list[float] = []
    client = aioredis.Redis.from_url(args.redis_url, decode_responses=True)
    async with Queue(args.queue, redis_url=args.redis_url) as queue:
        for seq in range(args.warmup + args.samples):
            sent = time.monotonic_ns()
            await queue.enqueue({"i": seq})
            started = probe_started_ns(
                seq, await client.blpop([STARTED_KEY], timeout=PROBE_TIMEOUT_S)
            )
            if seq >= args.warmup:
                latencies_ms.append((started - sent) / 1e6)
            # Pacing, not synchronisation: lets the worker go idle again; jittered so a
            # polling worker's period cannot phase-lock with the probes.
            await asyncio.sleep(args.gap_ms / 1000 * random.uniform(0.5, 1.5))
    await client.aclose()
    emit("result", latencies_ms=latencies_ms)


async def observability_check(args: argparse.Namespace) -> None:
    emit("result", available=observability_available())


HANDLERS = {
    "fill": fill,
    "drain-worker": drain_worker,
    "latency-worker": latency_worker,
    "enqueue-single": enqueue_single,
    "enqueue-bulk": enqueue_bulk,
    "latency-producer": latency_producer,
    "observability-check": observability_check,
}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(HANDLERS[args.role](args))


if __name__ == "__main__":
    main()
