"""`shoal demo`: a private Redis, the demo processor and a producer, with live counts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import click

from worker_runtime.demo import DEMO_QUEUE, app
from worker_runtime.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from worker_runtime.queue import Queue
from worker_runtime.worker import Worker


@click.command()
@click.option("--jobs", type=click.IntRange(1, 1_000_000), default=2000, show_default=True)
@click.option("--job-ms", type=click.IntRange(0, 60_000), default=20, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--redis-url", envvar="REDIS_URL", default=None,
              help="Use this Redis instead of starting a private one.")  # fmt: skip
def command(jobs: int, job_ms: int, concurrency: int, redis_url: str | None) -> None:
    """Run the demo: enqueue JOBS sleep jobs and watch a worker drain them."""
    with contextlib.ExitStack() as stack:
        if redis_url is None:
            try:
                redis_url = stack.enter_context(EmbeddedRedis()).url
            except EmbeddedRedisError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"started a private Redis at {redis_url}")
        asyncio.run(_demo(redis_url, jobs=jobs, job_ms=job_ms, concurrency=concurrency))


async def _demo(redis_url: str, *, jobs: int, job_ms: int, concurrency: int) -> None:
    worker = Worker(redis_url=redis_url, concurrency=concurrency, worker_id=f"demo-{os.getpid()}")
    for processor in app:
        worker.register(processor)
    async with Queue(DEMO_QUEUE, redis_url=redis_url) as queue:
        await queue.purge_dead()
        start = time.perf_counter()
        await queue.enqueue_many([{"ms": job_ms}] * jobs)
        click.echo(f"enqueued {jobs} jobs of {job_ms} ms on queue {DEMO_QUEUE!r}")
        await worker.start()
        try:
            while True:
                counts = await queue.counts()
                click.echo(
                    f"{time.perf_counter() - start:6.1f}s  waiting {counts['waiting']:>6}  "
                    f"active {counts['active']:>4}  completed {counts['completed']:>7}  "
                    f"dead {counts['dead']}"
                )
                if counts["waiting"] == counts["active"] == counts["delayed"] == 0:
                    break
                await asyncio.sleep(0.5)  # refresh rate of the display
        finally:
            await worker.stop()
        elapsed = time.perf_counter() - start
        click.echo(f"drained {jobs} jobs in {elapsed:.1f}s ({jobs / elapsed:,.0f} jobs/s)")
