"""Cron jobs in process: one job per tick across workers, no burst after downtime unless
catch_up, one-line errors for bad declarations."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings
from worker_runtime import Job, Queue, Worker
from worker_runtime.consuming.cron import cron_job_id, run_cron
from worker_runtime.core.cron_schedule import CronJob

pytestmark = pytest.mark.integration


def cron_worker(redis_url: str, ran: list[str], **cron: Any) -> Worker:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("cron")
    async def handle(job: Job[Any]) -> None:
        ran.append(job.id)

    worker.cron("cron", name="beat", data={"x": 1}, **cron)
    return worker


async def _ticks(q: Queue) -> list[int]:
    ids = await q.redis.zrange(q.keys.completed, 0, -1)
    return sorted(int(i.rsplit(":", 1)[1]) for i in ids)


@pytest.mark.parametrize("catch_up", [False, True])
async def test_missed_ticks_are_skipped_unless_catch_up(redis_url: str, catch_up: bool) -> None:
    ran: list[str] = []
    workers = [cron_worker(redis_url, ran, every_seconds=1, catch_up=catch_up) for _ in range(2)]
    async with Queue("cron", redis_url=redis_url) as q:
        # Every worker was down for the last 6 ticks.
        last = int(time.time()) - 6
        await q.redis.hset(q.keys.cron, "beat", last)
        started = time.time()
        for w in workers:
            await w.start()
        try:
            await eventually(lambda: _has_tick_after(q, started), timeout=5, description="a tick")
        finally:
            for w in workers:
                await w.stop(grace_seconds=2)
        ticks = await _ticks(q)
        job = await q.get_job(cron_job_id("beat", ticks[-1]))
    assert len(ran) == len(set(ran)) == len(ticks)  # once per tick, two workers
    assert job is not None
    assert job.data == {"x": 1}
    missed = [t for t in ticks if t <= started]
    if catch_up:
        assert missed[:6] == list(range(last + 1, last + 7))
    else:
        assert missed == []
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))


async def _has_tick_after(q: Queue, started: float) -> bool:
    ticks = await _ticks(q)
    return bool(ticks) and ticks[-1] > started + 1


def test_bad_cron_declarations_say_why() -> None:
    worker = Worker(redis_url="redis://localhost:1/0")
    with pytest.raises(ValueError, match="register a processor"):
        worker.cron("nothing", "* * * * *")

    @worker.processor("c")
    async def handle(job: Job[Any]) -> None:
        pass

    with pytest.raises(
        ValueError, match=r"^cron\('c'\): schedule: '61 \* \* \* \*': '61' is outside 0-59$"
    ):
        worker.cron("c", "61 * * * *")
    worker.cron("c", "*/5 * * * *")
    with pytest.raises(ValueError, match="already has a cron job named"):
        worker.cron("c", "*/5 * * * *")
    with pytest.raises(ValueError, match=r"^cron\('c'\): every_seconds: Input should be greater"):
        worker.cron("c", every_seconds=0)


async def test_ticks_follow_redis_clock_not_a_skewed_worker_clock(redis_url: str) -> None:
    """A worker whose clock is an hour ahead enqueues the tick of Redis' time (else it would
    record a tick an hour ahead, and workers with a right clock would skip every tick)."""
    beat = CronJob(name="beat", every_seconds=1)
    async with Queue("cron-clock", redis_url=redis_url) as q:
        task = asyncio.create_task(
            run_cron(redis=q.redis, keys=q.keys, jobs=[beat], clock=lambda: time.time() + 3600)
        )
        try:
            ids = await eventually(
                lambda: q.redis.lrange(q.keys.wait, 0, -1), timeout=5, description="a tick"
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        seconds, _ = await q.redis.time()
    tick = int(ids[0].rsplit(":", 1)[1])
    assert seconds - 3 <= tick <= seconds + 1, (tick, seconds)
