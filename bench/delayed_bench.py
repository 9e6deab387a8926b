"""Delayed jobs: how fast a burst of due jobs drains, and how close to its due time a
delayed job starts on an idle worker. Shoal only (one in-process worker, concurrency 50),
on a private redis-server; appends its table to bench/RESULTS.md unless --no-record.

    python bench/delayed_bench.py [--jobs 20000] [--repeat 3] [--samples 200] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Run as a script: bench/ is on sys.path already; the repo root brings the checkout.
sys.path.insert(0, str(ROOT))

from host import CpuAccount, git_head, utc_now, versions  # noqa: E402
from results_table import append_results  # noqa: E402

from tests.harness.redis_server import RedisServer, redis_server_binary  # noqa: E402
from worker_runtime import Job, JobSpec, Queue, QueueConfig, Worker  # noqa: E402

CONCURRENCY = 50
#: Time between the last enqueue and the burst's due time.
LEAD_SECONDS = 0.5
#: Make every delayed job due at ARGV[1] ms and tell idle workers (as enqueue.lua would).
DUE_ALL = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 1, #ids, 1000 do
  local args = {}
  for j = i, math.min(i + 999, #ids) do args[#args + 1] = ARGV[1]; args[#args + 1] = ids[j] end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZADD', KEYS[2], 'LT', ARGV[1], 'd')
return #ids
"""


async def drain(url: str, jobs: int, *, delayed: bool) -> tuple[float, float]:
    """Jobs/s from the due time (or first start) to the last completion; first-start lag ms."""
    async with Queue("dbench", redis_url=url) as q:
        await q.redis.flushall()
        done = 0
        finished = asyncio.Event()
        first: list[float] = []
        worker = Worker(redis_url=url, concurrency=CONCURRENCY, max_jobs_per_worker=CONCURRENCY)

        @worker.processor("dbench", config=QueueConfig(keep_completed=1000))
        async def handle(job: Job[Any]) -> None:
            nonlocal done
            if not first:
                first.append(time.time())
            done += 1
            if done == jobs:
                finished.set()

        await worker.start()
        try:
            if delayed:
                # Far in the future first, then all due at one instant (the delayed set's
                # scores are the due times): the same for every version of the scripts.
                await q.enqueue_many([JobSpec({"n": i}, delay_seconds=3600) for i in range(jobs)])
                due_ms = round((time.time() + LEAD_SECONDS) * 1000)
                await q.redis.eval(DUE_ALL, 2, q.keys.delayed, q.keys.marker, due_ms)
                start = due_ms / 1000
            else:
                await q.enqueue_many([{"n": i} for i in range(jobs)])
                start = 0.0
            await finished.wait()
            end = time.time()
            start = start or first[0]
            return jobs / (end - start), (first[0] - start) * 1000
        finally:
            await worker.stop()


async def lateness(url: str, samples: int) -> list[int]:
    """Start time minus due time (Redis' clock, ms) of sparse delayed jobs, idle worker."""
    rng = random.Random(7)
    async with Queue("dlate", redis_url=url) as q:
        await q.redis.flushall()
        worker = Worker(redis_url=url, concurrency=CONCURRENCY)

        @worker.processor("dlate", config=QueueConfig(keep_completed=-1))
        async def handle(job: Job[Any]) -> None:
            pass

        await worker.start()
        try:
            ids = []
            for _ in range(samples):
                ids.append((await q.enqueue({}, delay_seconds=rng.uniform(0.05, 0.5))).id)
                await asyncio.sleep(rng.uniform(0.0, 0.05))
            # Polled (not Queue.wait_for), so older checkouts run the same bench.
            deadline = time.monotonic() + 30
            while True:
                records = [await q.get_job(i) for i in ids]
                if all(r and r.finished_at for r in records) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            await worker.stop()
    return sorted(r.started_at - r.due_at for r in records if r and r.started_at and r.due_at)


def pct(values: list[int], p: float) -> int:
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    cpu = CpuAccount.start()
    with RedisServer() as server:

        async def run() -> tuple[list[float], list[float], list[float], list[int]]:
            ready, burst, lag = [], [], []
            for _ in range(args.repeat):
                ready.append((await drain(server.url, args.jobs, delayed=False))[0])
                rate, first_lag = await drain(server.url, args.jobs, delayed=True)
                burst.append(rate)
                lag.append(first_lag)
            return ready, burst, lag, await lateness(server.url, args.samples)

        ready, burst, lag, late = asyncio.run(run())
    n = f"{args.jobs:,}"
    text = "\n".join(
        [
            f"## Delayed jobs (Shoal) — {utc_now()}, commit {git_head(ROOT)}",
            "",
            f"`python bench/delayed_bench.py`: one in-process worker at concurrency {CONCURRENCY}, "
            f"no-op jobs, median of {args.repeat}. Burst: {n} delayed jobs all due at one "
            f"instant {LEAD_SECONDS:g} s ahead, timed from that due time to the last "
            f"completion (promotion included); ready: the same {n} jobs enqueued ready. "
            f"On time: {args.samples} delayed jobs (50-500 ms) enqueued one by one on an idle "
            "worker, start minus due time on Redis' clock.",
            f"Machine: {cpu.summary()}. {versions(redis_server_binary())}.",
            "",
            "| metric | value |",
            "|---|---|",
            f"| drain of due delayed jobs, jobs/s (median) | {statistics.median(burst):,.0f} |",
            f"| drain of ready jobs, same run, jobs/s (median) | {statistics.median(ready):,.0f} |",
            f"| first delayed job started after its due time, ms (median) | "
            f"{statistics.median(lag):.1f} |",
            f"| delayed job start - due, p50 / p99 / max, ms | {pct(late, 0.5)} / "
            f"{pct(late, 0.99)} / {late[-1]} |",
            "",
            "runs, jobs/s: delayed "
            + ", ".join(f"{r:,.0f}" for r in burst)
            + "; ready "
            + ", ".join(f"{r:,.0f}" for r in ready),
        ]
    )
    print(text)
    if args.record:
        append_results(args.results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
