"""Lease upkeep of a queue consumer: renew the leases it holds (and stop runs whose lease was
lost or whose job was cancelled meanwhile), reclaim jobs whose worker died, hand jobs back on
shutdown.

A lease is one run of a job: ``(job id, lease token)``, the token new for every fetch call
(fetch.lua), so a job leased twice by the same worker (its first lease lapsed while the event
loop stalled, then the job came back) is two runs that cannot be mistaken for each other.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import notify
from worker_runtime.consuming.redis_health import RedisHealth
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS

if TYPE_CHECKING:
    from worker_runtime.config import QueueConfig, WorkerSettings
    from worker_runtime.consuming.observers import WorkerObserver
    from worker_runtime.consuming.processor import Job
    from worker_runtime.core.keys import QueueKeys
    from worker_runtime.redis_io.scripts import Scripts

#: A run of a job: (job id, lease token).
Lease = tuple[str, str]

#: Stalled-job scan period; with the default 3 s lease a dead worker's jobs rerun within ~3.5 s.
#: Every scan also ticks the queue's lease clock: it must stay well under lease_clock.lua's
#: LEASE_CLOCK_MAX_STEP_MS (1 s), the gap beyond which time is taken for a Redis freeze.
RECLAIM_INTERVAL_SECONDS = 0.5


def pairs(flat: list[str]) -> list[Lease]:
    """``[id, token, id, token, ...]`` (a script's reply) as leases."""
    return list(zip(flat[0::2], flat[1::2], strict=True))


class LeaseKeeping(RedisHealth):
    """Mixed into `QueueConsumer`, which provides these attributes and the Redis-health calls."""

    name: str
    config: QueueConfig
    settings: WorkerSettings
    keys: QueueKeys
    scripts: Scripts
    observers: list[WorkerObserver]
    running: dict[Lease, tuple[Job[Any], asyncio.Task[None]]]
    _unacked: set[Lease]
    _cancelling: set[Lease]
    _lost: set[Lease]
    _events: int

    def lease_ids(self) -> set[Lease]:
        raise NotImplementedError

    async def _lease_loop(self) -> None:
        period = self.settings.lease_ms / 3000
        keys = [self.keys.active, self.keys.job_prefix, self.keys.lease_clock]
        while True:
            await asyncio.sleep(period)
            held = self.lease_ids()  # not past a run's timeout plus grace (consumer.py)
            if not held:
                continue
            args: list[Any] = [self.settings.lease_ms]
            for job_id, token in held:
                args += (job_id, token)
            try:
                lost, cancelled = await self.scripts.extend(keys=keys, args=args)
            except WORKER_RETRY_ERRORS as exc:
                reraise_if_cancelling()  # a cancel can surface as a connection error
                self._redis_failed("extend", exc)
            else:
                self._drop_lost(pairs(lost), cancelled=set(pairs(cancelled)))

    def _drop_lost(self, lost: list[Lease], *, cancelled: set[Lease]) -> None:
        """Stop the runs whose lease this worker no longer holds: cancelled through the queue
        (their state is recorded), or reclaimed or removed (another worker may run the job
        now). Their slot is freed when the task ends; nothing of theirs is acknowledged."""
        for lease in lost:
            entry = self.running.get(lease)
            if entry is None or lease in self._unacked:
                continue  # finished: its ack or failure is refused by the lease token
            (self._cancelling if lease in cancelled else self._lost).add(lease)
            entry[1].cancel()

    async def _reclaim_loop(self) -> None:
        k = self.keys
        keys = [
            k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix, k.prioritized,
            k.events, k.flows, k.child_failures_prefix, k.lease_clock,
        ]  # fmt: skip
        args = [self.config.max_stalls, 1000, 1 if self.config.dead_letter else 0, self._events]
        while True:
            try:
                requeued, failed = await self.scripts.reclaim(keys=keys, args=args)
            except WORKER_RETRY_ERRORS as exc:
                reraise_if_cancelling()  # a cancel can surface as a connection error
                self._redis_failed("reclaim", exc)
            else:
                if requeued or failed:
                    notify(self.observers, "jobs_stalled", self.name, requeued=requeued,
                           failed=failed)  # fmt: skip
            await asyncio.sleep(RECLAIM_INTERVAL_SECONDS)

    async def _release(self, jobs: list[Job[Any]]) -> None:
        if not jobs:
            return
        k = self.keys
        args: list[str] = []
        for job in jobs:
            args += job.lease
        await self._with_retry(
            "release",
            lambda: self.scripts.release(
                [k.active, k.wait, k.marker, k.job_prefix, k.prioritized, k.stats], args
            ),
            attempts=5,
        )
        for job in jobs:
            notify(self.observers, "job_released", job)
