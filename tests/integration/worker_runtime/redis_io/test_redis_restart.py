"""A Redis restart mid-run (AOF on): the worker reconnects with backoff and nothing is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, Queue, Worker
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.redis_io.connection import CONNECTION_ERRORS

pytestmark = pytest.mark.integration


class RedisHealth(WorkerObserver):
    def __init__(self) -> None:
        self.errors = 0
        self.recoveries = 0

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.errors += 1

    def redis_recovered(self, queue: str) -> None:
        self.recoveries += 1


async def test_restart_mid_run_loses_nothing(own_redis: RedisServer) -> None:
    url = own_redis.url
    executed: set[int] = set()
    health = RedisHealth()
    worker = Worker(settings=fast_settings(url), concurrency=20, observers=[health])

    @worker.processor("aof")
    async def handle(job: Job[Any]) -> None:
        await asyncio.sleep(0.02)
        executed.add(job.data["i"])

    n = 1000
    async with Queue("aof", redis_url=url) as q:
        await q.enqueue_many([{"i": i} for i in range(n)])
        async with running(worker):

            async def some_done() -> bool:
                return len(executed) >= 100

            await eventually(some_done, timeout=10, description="100 jobs done")
            await asyncio.to_thread(own_redis.stop)

            async def noticed() -> bool:
                return health.errors > 0

            await eventually(noticed, timeout=10, description="outage noticed")
            await asyncio.to_thread(own_redis.start)

            async def all_done() -> bool:
                try:
                    return (await q.counts())["completed"] == n
                except CONNECTION_ERRORS:
                    return False

            await eventually(all_done, timeout=30, description=f"{n} completed after restart")
            counts = await q.counts()
    assert executed == set(range(n))
    assert counts["waiting"] == counts["active"] == counts["dead"] == 0
    assert health.recoveries >= 1


class OperationErrors(WorkerObserver):
    def __init__(self) -> None:
        self.operations: list[str] = []

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.operations.append(operation)


async def test_error_replies_are_retried_not_fatal(own_redis: RedisServer) -> None:
    """An error reply (here OOM; likewise DENIED, READONLY, NOPERM) must not kill a loop."""
    url = own_redis.url
    errors = OperationErrors()
    done = asyncio.Event()
    worker = Worker(settings=fast_settings(url), observers=[errors])

    @worker.processor("oom")
    async def handle(job: Job[Any]) -> None:
        done.set()

    async with Queue("oom", redis_url=url) as q:
        await q.enqueue({})
        await q.redis.config_set("maxmemory", 1)  # every write script now fails with -OOM
        try:
            async with running(worker):

                async def fetch_failed_twice() -> bool:
                    return errors.operations.count("fetch") >= 2

                await eventually(fetch_failed_twice, timeout=10, description="OOM on fetch")
                await q.redis.config_set("maxmemory", 0)
                await asyncio.wait_for(done.wait(), timeout=10)
        finally:
            await q.redis.config_set("maxmemory", 0)
