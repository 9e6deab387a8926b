"""How an idle consumer waits: for a wake-up on the queue's marker, or until the next due
time (a delayed job, a rate-limit window), whichever comes first."""

from __future__ import annotations

import asyncio
from typing import Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS

#: How long an idle consumer blocks on the wake-up marker before looking again.
IDLE_BLOCK_SECONDS = 5.0


class IdleWait:
    """One pending ``BZPOPMIN`` on the marker, reused across waits.

    Redis times a blocking command out on its own timer, up to 1/hz late (100 ms at the
    default hz 10); a due job must start sooner than that. So the due time is kept by a local
    timer instead: when it fires first, the consumer fetches while the block stays pending,
    and the next wait picks the same block up again (cancelling it would not help: redis-py
    lets a command in flight finish). A wake-up the block takes while its consumer is busy is
    put back on the marker, so an idle consumer (this worker's or another's) gets it.
    """

    def __init__(self, blocking_redis: Any, marker: str) -> None:
        self._redis = blocking_redis
        self._marker = marker
        self._pending: asyncio.Future[Any] | None = None
        self._waiting = False
        self._resignals: set[asyncio.Future[Any]] = set()

    async def wait(self, wait_ms: int) -> BaseException | None:
        """Return when woken or when ``wait_ms`` passed (-1: only the idle cap).

        Returns a connection error the block hit (for health reporting), else None.
        Raises CancelledError when cancelled by `cancel`.
        """
        timeout = IDLE_BLOCK_SECONDS if wait_ms < 0 else min(IDLE_BLOCK_SECONDS, wait_ms / 1000)
        if timeout <= 0:
            return None
        if self._pending is None:
            self._pending = asyncio.ensure_future(
                self._redis.bzpopmin(self._marker, timeout=max(timeout, 0.001))
            )
            self._pending.add_done_callback(self._on_done)
        pending = self._pending
        self._waiting = True
        try:
            done, _ = await asyncio.wait({pending}, timeout=timeout)
        finally:
            self._waiting = False
        if not done:
            return None
        self._pending = None
        try:
            pending.result()
        except WORKER_RETRY_ERRORS as exc:
            reraise_if_cancelling()  # a cancel can surface as a connection error
            return exc
        return None

    def _on_done(self, block: asyncio.Future[Any]) -> None:
        if self._waiting or block.cancelled() or block.exception() is not None:
            return
        popped = block.result()
        if popped:
            _key, member, score = popped
            resignal = asyncio.ensure_future(
                self._redis.zadd(self._marker, {member: score}, lt=True)
            )
            self._resignals.add(resignal)
            resignal.add_done_callback(self._resignal_done)

    def _resignal_done(self, resignal: asyncio.Future[Any]) -> None:
        self._resignals.discard(resignal)
        if not resignal.cancelled():
            resignal.exception()  # retrieved: a lost wake-up only delays a worker's next look

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
