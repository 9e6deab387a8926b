"""arq's side of Shoal's throughput benchmark: one role per process, driven by throughput.py.

Runs in the peers' own venv (bench/.venv-peers: arq pins its own redis-py), so it imports
nothing from Shoal, only the protocol it shares with bench/shoal_bench.py (the same roles,
flags and JSON-lines output): bench/bench_protocol.py, standard library only.
arq has no bulk enqueue: the ``enqueue-bulk`` role reports ``{"unsupported": true}``.
arq runs with its defaults (results kept 3600 s, queue polled every 0.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import func

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_protocol import (
    PROBE_TIMEOUT_S,
    STARTED_KEY,
    WARMUP_SINGLE,
    argument_parser,
    emit,
    probe_started_ns,
    until_terminated,
)

#: arq's default poll period (Worker(poll_delay=0.5)), used here as is.
POLL_DELAY_S = 0.5
#: Jobs enqueued concurrently while filling the queue (arq has no bulk call).
FILL_CONCURRENCY = 200


def parse_args(argv: list[str]) -> argparse.Namespace:
    return argument_parser(__doc__.splitlines()[0]).parse_args(argv)


def queue_name(args: argparse.Namespace) -> str:
    return f"arq:{args.queue}"


async def pool(args: argparse.Namespace, name: str | None = None) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(args.redis_url), default_queue_name=name or queue_name(args)
    )


def make_worker(args: argparse.Namespace, functions: list[Any], **kwargs: Any) -> Worker:
    return Worker(
        functions=functions,
        queue_name=queue_name(args),
        redis_settings=RedisSettings.from_dsn(args.redis_url),
        max_jobs=args.concurrency,
        handle_signals=False,
        **kwargs,
    )


async def drain_worker(args: argparse.Namespace) -> None:
    first_ns = 0
    completed = 0
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def noop(ctx: dict[str, Any], i: int) -> None:
        nonlocal first_ns
        if not first_ns:
            first_ns = time.monotonic_ns()

    async def after_job_end(ctx: dict[str, Any]) -> None:
        # arq calls this once the job's result is stored and it left the queue.
        nonlocal completed
        completed += 1
        if completed == args.jobs:
            done.set_result(time.monotonic_ns())

    worker = make_worker(args, [func(noop, name="noop")], after_job_end=after_job_end)
    running = asyncio.create_task(worker.async_run())
    last_ns = await done
    emit("result", jobs=args.jobs, seconds=(last_ns - first_ns) / 1e9)
    await until_terminated()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()


async def latency_worker(args: argparse.Namespace) -> None:
    async def probe(ctx: dict[str, Any], i: int) -> None:
        started = time.monotonic_ns()
        await ctx["redis"].lpush(STARTED_KEY, f"{i} {started}")

    started = asyncio.Event()

    async def on_startup(ctx: dict[str, Any]) -> None:
        started.set()  # arq has connected and is about to poll

    worker = make_worker(args, [func(probe, name="probe")], on_startup=on_startup)
    running = asyncio.create_task(worker.async_run())
    await started.wait()
    emit("ready")
    await until_terminated()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()


async def fill(args: argparse.Namespace) -> None:
    redis = await pool(args)
    for start in range(0, args.jobs, FILL_CONCURRENCY):
        stop = min(args.jobs, start + FILL_CONCURRENCY)
        await asyncio.gather(*(redis.enqueue_job("noop", i) for i in range(start, stop)))
    await redis.aclose()
    emit("result", jobs=args.jobs)


async def enqueue_single(args: argparse.Namespace) -> None:
    redis = await pool(args)
    for i in range(WARMUP_SINGLE):
        await redis.enqueue_job("noop", i, _queue_name=f"{queue_name(args)}-warmup")
    started = time.perf_counter()
    for i in range(args.jobs):
        await redis.enqueue_job("noop", i)
    seconds = time.perf_counter() - started
    await redis.aclose()
    emit("result", jobs=args.jobs, seconds=seconds)


async def enqueue_bulk(args: argparse.Namespace) -> None:
    emit("result", unsupported=True)


async def latency_producer(args: argparse.Namespace) -> None:
    latencies_ms: list[float] = []
    redis = await pool(args)
    for seq in range(args.warmup + args.samples):
        sent = time.monotonic_ns()
        await redis.enqueue_job("probe", seq)
        started = probe_started_ns(seq, await redis.blpop([STARTED_KEY], timeout=PROBE_TIMEOUT_S))
        if seq >= args.warmup:
            latencies_ms.append((started - sent) / 1e6)
        # Pacing, not synchronisation. arq polls its queue every POLL_DELAY_S, so the pause
        # is spread over a whole poll period: probes then land at uniformly random phases
        # (a fixed short gap would always land just after a poll: the worst case).
        await asyncio.sleep(
            args.gap_ms / 1000 * random.uniform(0.5, 1.5) + random.uniform(0, POLL_DELAY_S)
        )
    await redis.aclose()
    emit("result", latencies_ms=latencies_ms)


HANDLERS = {
    "fill": fill,
    "drain-worker": drain_worker,
    "latency-worker": latency_worker,
    "enqueue-single": enqueue_single,
    "enqueue-bulk": enqueue_bulk,
    "latency-producer": latency_producer,
}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    asyncio.run(HANDLERS[args.role](args))


if __name__ == "__main__":
    main()
