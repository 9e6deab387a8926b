"""Keep a consumer's background loops running: a loop that raises an unexpected exception is
restarted with capped backoff, and is counted as down (readiness goes red) until it runs again.

A loop that ends on its own (the fetch loop when the worker stops fetching) is not restarted.
Cancellation passes through: stopping the worker cancels the supervising task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.redis_io.reconnect import Backoff

#: A loop that ran this long without raising starts its backoff from the beginning again.
HEALTHY_RUN_SECONDS = 60.0

LoopFactory = Callable[[], Coroutine[Any, Any, None]]
CrashReport = Callable[[str, BaseException, float], None]


class LoopSupervisor:
    """Runs named loops; ``down`` names those waiting to be restarted after a crash."""

    def __init__(self, *, on_crash: CrashReport, base: float = 0.5, cap: float = 30.0) -> None:
        self.down: set[str] = set()
        self._on_crash = on_crash
        self._base = base
        self._cap = cap

    def spawn(self, name: str, loop: LoopFactory, *, task_name: str) -> asyncio.Task[None]:
        return asyncio.create_task(self._supervise(name, loop), name=task_name)

    async def _supervise(self, name: str, loop: LoopFactory) -> None:
        backoff = Backoff(base=self._base, cap=self._cap)
        while True:
            started = time.monotonic()
            try:
                await loop()
                return
            except Exception as exc:  # any crash: report it and restart the loop
                # ...but a cancellation that redis-py turned into a connection error is the
                # worker stopping: restarting the loop then would keep it from ever stopping.
                reraise_if_cancelling()
                if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                    backoff.reset()
                delay = backoff.next_delay()
                self.down.add(name)
                self._on_crash(name, exc, delay)
                try:
                    await asyncio.sleep(delay)
                finally:
                    self.down.discard(name)
