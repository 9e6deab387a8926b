"""One background loop reads every queue and the live workers each period; pages and the SSE
stream render from its latest reading, so Redis load does not grow with open browsers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import structlog

from shoal.dashboard.history import QueueHistory
from shoal.dashboard.settings import DashboardSettings
from worker_runtime.core.keys import QUEUE_NAME_RE
from worker_runtime.observing.heartbeat import WorkerInfo, list_workers
from worker_runtime.producing.queue_snapshot import snapshot_queues
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS, RedisClient

log = structlog.get_logger("shoal.dashboard")

RESCAN_SECONDS = 30.0  # how often keys are scanned for queues no worker names
SAMPLE_TIMEOUT_SECONDS = 30.0  # a stalled read becomes an outage banner, not a frozen page


def queue_from_stats_key(key: str, *, prefix: str) -> str | None:
    """``prefix:{name}:stats`` -> name (None for anything else)."""
    head, tail = f"{prefix}:{{", "}:stats"
    if not (key.startswith(head) and key.endswith(tail)):
        return None
    name = key[len(head) : -len(tail)]
    return name if QUEUE_NAME_RE.match(name) else None


async def discover_queues(redis: RedisClient, *, prefix: str) -> set[str]:
    """Queues that have a stats hash (every queue that ever had a job), by SCAN."""
    found: set[str] = set()
    async for key in redis.scan_iter(match=f"{prefix}:{{*}}:stats", count=1000, _type="hash"):
        name = queue_from_stats_key(str(key), prefix=prefix)
        if name:
            found.add(name)
    return found


class Sampler:
    def __init__(self, redis: RedisClient, settings: DashboardSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.histories: dict[str, QueueHistory] = {}
        self.workers: list[WorkerInfo] = []
        self.scanned: set[str] = set()
        self.error: str | None = None
        self.version = 0
        self.changed = asyncio.Condition()
        self._scanned_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def queues(self) -> list[str]:
        names: set[str] = set(self.settings.queues) | self.scanned
        for worker in self.workers:
            names.update(worker.queues)
        return sorted(names)

    def history(self, queue: str) -> QueueHistory:
        if queue not in self.histories:
            window = round(self.settings.history_seconds * 1000)
            self.histories[queue] = QueueHistory(window_ms=window)
        return self.histories[queue]

    async def sample_once(self) -> None:
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT_SECONDS):
                await self._read()
            self.error = None
        except WORKER_RETRY_ERRORS as exc:  # an outage, or a reply such as LOADING or NOPERM
            self.error = f"cannot reach Redis: {exc or type(exc).__name__}"
        async with self.changed:
            self.version += 1
            self.changed.notify_all()

    async def _read(self) -> None:
        if time.monotonic() - self._scanned_at >= RESCAN_SECONDS:
            self.scanned = await discover_queues(self.redis, prefix=self.settings.prefix)
            self._scanned_at = time.monotonic()
        self.workers = await list_workers(self.redis, prefix=self.settings.prefix)
        snaps = await snapshot_queues(self.redis, self.queues, prefix=self.settings.prefix)
        for name, snap in snaps.items():
            self.history(name).add(snap)

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sample_once()
            except Exception:  # a bad record must not stop the dashboard's only reader
                log.exception("dashboard sample failed")
            await asyncio.sleep(
                max(0.0, self.settings.sample_seconds - (time.monotonic() - started))
            )

    async def wait_newer(self, version: int, *, timeout: float) -> int:  # noqa: ASYNC109
        """Wait until a sample newer than ``version`` exists (or ``timeout``); the version now."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: self.version > version), timeout
                )
            return self.version

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="shoal-dashboard-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def known(queues: Iterable[str], name: str | None) -> str | None:
    """``name`` if it is a valid queue name (pages accept any valid one, listed or not)."""
    if name and QUEUE_NAME_RE.match(name):
        return name
    return next(iter(queues), None)
