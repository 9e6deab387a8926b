"""Cron / repeatable jobs: every worker of a queue runs the schedule, one job per tick.

Each tick enqueues ``cron:<name>:<tick epoch seconds>`` through ``cron.lua``, which records the
last tick per cron name in the queue's ``cron`` hash: the first worker to reach a tick
enqueues it, the others change nothing, however many run. A worker that starts after ticks
were missed (every worker was down) skips them, unless the cron job asks for ``catch_up``:
then it enqueues each missed tick since the last recorded one (at most ``MAX_CATCH_UP``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from worker_runtime.core.codec import encode_payload
from worker_runtime.core.cron_schedule import CronJob
from worker_runtime.core.keys import QueueKeys
from worker_runtime.producing.control_scripts import ControlScripts
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS
from worker_runtime.redis_io.reconnect import Backoff

if TYPE_CHECKING:
    from worker_runtime.consuming.processor import Registration

#: Missed ticks enqueued at most when catching up (a long outage must not flood the queue).
MAX_CATCH_UP = 1000


def cron_job_id(name: str, tick: int) -> str:
    return f"cron:{name}:{tick}"


def add_cron_job(
    registrations: Mapping[str, Registration],
    queue: str,
    *,
    schedule: str | None = None,
    every_seconds: int | None = None,
    name: str = "",
    data: Any = None,
    priority: int = 0,
    catch_up: bool = False,
) -> None:
    """`Worker.cron`: add a `CronJob` to a registered queue's config (one-line errors)."""
    reg = registrations.get(queue)
    if reg is None:
        raise ValueError(f"cron(): register a processor for queue {queue!r} first")
    try:
        job = CronJob(
            name=name,
            schedule=schedule,
            every_seconds=every_seconds,
            data=data,
            priority=priority,
            catch_up=catch_up,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"cron({queue!r}): {field + ': ' if field else ''}{message}") from None
    if any(existing.name == job.name for existing in reg.config.cron):
        raise ValueError(f"cron(): queue {queue!r} already has a cron job named {job.name!r}")
    reg.config = reg.config.model_copy(update={"cron": (*reg.config.cron, job)})


async def run_cron(
    *,
    redis: Any,
    keys: QueueKeys,
    jobs: Sequence[CronJob],
    clock: Callable[[], float] = time.time,
) -> None:
    """Run every cron job of one queue until cancelled. Ticks follow Redis' clock (``TIME``),
    not ``clock`` (the worker's): workers whose clocks disagree still agree on the ticks."""
    scripts = ControlScripts(redis)
    redis_clock = RedisClock(redis, clock)
    tasks = [asyncio.create_task(_run_one(redis, scripts, keys, job, redis_clock)) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RedisClock:
    """Redis' time, read through the worker's clock plus an offset measured with ``TIME``
    (refreshed before each tick; the last offset is kept while Redis is unreachable)."""

    def __init__(self, redis: Any, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.local = clock
        self.offset = 0.0

    async def sync(self) -> None:
        with contextlib.suppress(*WORKER_RETRY_ERRORS):
            before = self.local()
            seconds, micros = await self.redis.time()
            after = self.local()
            self.offset = seconds + micros / 1e6 - (before + after) / 2

    def now(self) -> float:
        return self.local() + self.offset


async def _run_one(
    redis: Any, scripts: ControlScripts, keys: QueueKeys, job: CronJob, clock: RedisClock
) -> None:
    payload = encode_payload(job.data)

    async def fire(tick: int) -> bool:
        args = [job.name, tick, cron_job_id(job.name, tick), payload, job.priority]
        cron_keys = [keys.wait, keys.marker, keys.stats, keys.job_prefix, keys.prioritized]
        return bool(await scripts.cron(keys=[*cron_keys, keys.cron], args=args))

    await clock.sync()
    if job.catch_up:
        await _catch_up(redis, keys, job, fire, clock)
    tick = job.next_after(clock.now())
    while True:
        while clock.now() < tick:
            await asyncio.sleep(max(0.0, tick - clock.now()))
            await clock.sync()
        backoff = Backoff()
        # Redis down: keep trying this tick until the next one is due, then move on.
        while True:
            try:
                await fire(tick)
                break
            except WORKER_RETRY_ERRORS:
                if clock.now() >= job.next_after(tick):
                    break
                await backoff.sleep()
        tick = job.next_after(tick if job.catch_up else max(tick, clock.now()))


async def _catch_up(
    redis: Any, keys: QueueKeys, job: CronJob, fire: Any, clock: RedisClock
) -> None:
    with contextlib.suppress(*WORKER_RETRY_ERRORS):
        last = await redis.hget(keys.cron, job.name)
        if last is None:
            return
        now = clock.now()
        tick = job.next_after(int(last))
        for _ in range(MAX_CATCH_UP):
            if tick > now:
                break
            await fire(tick)
            tick = job.next_after(tick)
