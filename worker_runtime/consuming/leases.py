"""Lease upkeep of a queue consumer: renew the leases it holds (and stop jobs cancelled
meanwhile), reclaim jobs whose worker died, hand jobs back on shutdown."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import notify
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS

if TYPE_CHECKING:
    from worker_runtime.config import QueueConfig, WorkerSettings
    from worker_runtime.consuming.observers import WorkerObserver
    from worker_runtime.consuming.processor import Job
    from worker_runtime.core.keys import QueueKeys
    from worker_runtime.redis_io.scripts import Scripts

#: Stalled-job scan period; with the default 3 s lease a dead worker's jobs rerun within ~4 s.
RECLAIM_INTERVAL_SECONDS = 1.0


class LeaseKeeping:
    """Mixed into `QueueConsumer`, which provides these attributes and the Redis-health calls."""

    name: str
    config: QueueConfig
    settings: WorkerSettings
    keys: QueueKeys
    scripts: Scripts
    token: str
    observers: list[WorkerObserver]
    running: dict[str, tuple[Job[Any], asyncio.Task[None]]]
    _unacked: set[str]
    _cancelling: set[str]
    _events: int

    def _redis_failed(self, operation: str, exc: BaseException) -> None:
        raise NotImplementedError

    def lease_ids(self) -> list[str]:
        raise NotImplementedError

    async def _with_retry(self, operation: str, call: Any, *, attempts: int | None = None) -> Any:
        raise NotImplementedError

    async def _lease_loop(self) -> None:
        period = self.settings.lease_ms / 3000
        while True:
            await asyncio.sleep(period)
            ids = self.lease_ids()  # consumer.py: not past a run's timeout plus grace
            if not ids:
                continue
            try:
                _lost, cancelled = await self.scripts.extend(
                    keys=[self.keys.active, self.keys.job_prefix],
                    args=[self.settings.lease_ms, self.token, *ids],
                )
            except WORKER_RETRY_ERRORS as exc:
                reraise_if_cancelling()  # a cancel can surface as a connection error
                self._redis_failed("extend", exc)
            else:
                self._cancel_running(cancelled)

    def _cancel_running(self, ids: list[str]) -> None:
        """Stop the tasks of jobs cancelled through the queue (their state is recorded)."""
        for job_id in ids:
            entry = self.running.get(job_id)
            if entry is not None and job_id not in self._unacked:
                self._cancelling.add(job_id)
                entry[1].cancel()

    async def _reclaim_loop(self) -> None:
        k = self.keys
        keys = [
            k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix, k.prioritized,
            k.events, k.flows, k.child_failures_prefix,
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
        k = self.keys
        ids = [job.id for job in jobs]
        await self._with_retry(
            "release",
            lambda: self.scripts.release(
                [k.active, k.wait, k.marker, k.job_prefix, k.prioritized], [self.token, *ids]
            ),
            attempts=5,
        )
        for job in jobs:
            notify(self.observers, "job_released", job)
