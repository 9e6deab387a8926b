"""Helpers for worker runtime integration tests (a real Redis from tests/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from worker_runtime import Queue, Worker, WorkerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """The core suite runs twice: on a standalone Redis and on a 3-master Redis Cluster."""
    return any_redis_url


def fast_settings(redis_url: str, **overrides: object) -> WorkerSettings:
    """Short leases so stall tests finish quickly; everything else as in production."""
    base: dict[str, object] = {"redis_url": redis_url, "lease_ms": 1000}
    base.update(overrides)
    return WorkerSettings.model_validate(base)


def max_in_window(times: list[int], window_ms: int) -> int:
    """The most of ``times`` (ms) inside any window of ``window_ms``: what a rate limit caps."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@contextlib.asynccontextmanager
async def running(worker: Worker, *, grace: float = 5.0) -> AsyncIterator[Worker]:
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace_seconds=grace)


@pytest.fixture
async def queue_factory(redis_url: str) -> AsyncIterator[object]:
    queues: list[Queue] = []

    def make(name: str) -> Queue:
        q = Queue(name, redis_url=redis_url)
        queues.append(q)
        return q

    yield make
    for q in queues:
        await q.close()
