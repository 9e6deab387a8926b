"""Heartbeat records in Redis: live workers with their load, gone on stop, pruned on expiry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.observed import observed, observed_settings
from worker_runtime import Job, Queue, Worker
from worker_runtime.core.keys import DEFAULT_PREFIX, worker_key, workers_index_key
from worker_runtime.observing.heartbeat import WorkerInfo, list_workers, write_record
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration


async def test_live_workers_show_their_load_and_leave_on_stop(
    any_redis_url: str, tmp_path: Path
) -> None:
    settings = observed_settings(any_redis_url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings, concurrency=3)
    release = asyncio.Event()

    @worker.processor("beats")
    async def handle(job: Job[Any]) -> None:
        await release.wait()

    client = connect(any_redis_url)
    try:
        async with observed(worker, settings), Queue("beats", redis_url=any_redis_url) as q:
            await q.enqueue_many([{}] * 2)

            async def busy() -> list[WorkerInfo]:
                found = await list_workers(client)
                return [w for w in found if w.in_flight.get("beats") == 2]

            (info,) = await eventually(busy, description="a heartbeat with 2 in flight")
            assert info.id == worker.id
            assert info.queues == ["beats"]
            assert info.capacity == {"beats": 3}
            assert info.active == 2
            assert info.draining is False
            assert abs(info.last_heartbeat / 1000 - time.time()) < 5
            assert info.started_at <= info.last_heartbeat
            assert info.version
            ttl = await client.pttl(worker_key(DEFAULT_PREFIX, worker.id))
            assert 0 < ttl <= 300  # 3 intervals of 0.1 s
            release.set()

            async def processed() -> bool:
                found = await list_workers(client)
                return bool(found) and found[0].processed == 2

            await eventually(processed, description="processed count in the record")
        assert await list_workers(client) == []
        assert await client.zcard(workers_index_key(DEFAULT_PREFIX)) == 0
    finally:
        await client.aclose()


async def test_expired_records_are_not_listed_and_are_pruned(any_redis_url: str) -> None:
    client = connect(any_redis_url)
    try:
        now = round(time.time() * 1000)
        ghost = WorkerInfo(
            id="ghost-1", pod="ghost", host="h", pid=1, version="0", queues=["q"],
            in_flight={"q": 1}, capacity={"q": 1}, max_jobs=1, processed=0, failed=0,
            started_at=now, last_heartbeat=now, interval_ms=50, draining=False,
        )  # fmt: skip
        await write_record(client, ghost, prefix=DEFAULT_PREFIX, ttl_seconds=0.15)
        assert [w.id for w in await list_workers(client)] == ["ghost-1"]

        async def gone() -> bool:
            return await list_workers(client) == []

        await eventually(gone, description="the record to expire")
        assert await client.zcard(workers_index_key(DEFAULT_PREFIX)) == 0
    finally:
        await client.aclose()
