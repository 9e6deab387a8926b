"""What a `kill -9` of redis-server (AOF on, ``appendfsync everysec``) loses of acknowledged
enqueues: run enqueuers against a private Redis, SIGKILL it mid-load, restart it on the same
AOF, count the acknowledged job ids that are gone. Prints one line per try.

    python -m bench.aof_crash_window [--tries 5] [--seconds 3] [--producers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tests.harness.redis_server import RedisServer
from worker_runtime import Queue


async def _load(url: str, acked: list[str], stop: asyncio.Event, producers: int) -> None:
    async def one(q: Queue) -> None:
        while not stop.is_set():
            try:
                job = await q.enqueue({"t": time.time()})
            except Exception:  # the kill: every call from now on fails
                return
            acked.append(job.id)

    queues = [Queue("aof", redis_url=url) for _ in range(producers)]
    try:
        await asyncio.gather(*(one(q) for q in queues))
    finally:
        for q in queues:
            await q.close()


async def one_try(*, seconds: float, producers: int) -> tuple[int, int, float]:
    server = RedisServer(appendonly=True, extra_args=["--appendfsync", "everysec"]).start()
    try:
        acked: list[str] = []
        stop = asyncio.Event()
        load = asyncio.create_task(_load(server.url, acked, stop, producers))
        await asyncio.sleep(seconds)
        began = time.monotonic()
        server.kill()  # SIGKILL, no AOF flush
        stop.set()
        await load
        rate = len(acked) / (seconds + time.monotonic() - began)
        server.start()
        async with Queue("aof", redis_url=server.url) as q, q.redis.pipeline(False) as pipe:
            for job_id in acked:
                pipe.exists(q.keys.job(job_id))
            present = await pipe.execute()
        lost = sum(1 for p in present if not p)
        return len(acked), lost, rate
    finally:
        server.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--producers", type=int, default=8)
    args = parser.parse_args()
    for i in range(args.tries):
        acked, lost, rate = await one_try(seconds=args.seconds, producers=args.producers)
        window = lost / rate if rate else 0.0
        print(f"try {i + 1}: {acked} acknowledged at {rate:,.0f}/s, {lost} lost"
              f" (= {window * 1000:.0f} ms of enqueues)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
