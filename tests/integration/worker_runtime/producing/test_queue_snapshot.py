"""Queue snapshots: backlog, due-delayed, in-flight, totals and oldest age in one read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobSpec, Queue, Worker
from worker_runtime.producing.queue_snapshot import snapshot_queues

pytestmark = pytest.mark.integration


async def test_snapshot_of_several_queues_in_one_read(redis_url: str) -> None:
    async with Queue("s1", redis_url=redis_url) as q1, Queue("s2", redis_url=redis_url):
        await q1.enqueue_many([{}] * 5)
        await q1.enqueue_many(
            [JobSpec(data={}, delay_seconds=0.001), JobSpec(data={}, delay_seconds=60)]
        )
        await eventually(lambda: _due(q1), timeout=2, description="the 1 ms delayed job to be due")
        snaps = await snapshot_queues(q1.redis, ["s1", "s2", "s1"])
    assert list(snaps) == ["s1", "s2"]
    s1, s2 = snaps["s1"], snaps["s2"]
    assert (s1.waiting, s1.due_delayed, s1.delayed, s1.backlog) == (5, 1, 2, 6)
    assert s1.enqueued == 7
    assert s1.oldest_waiting_enqueued_ms is not None
    assert s1.oldest_waiting_age_seconds >= 0
    assert (s2.waiting, s2.backlog, s2.enqueued, s2.oldest_waiting_enqueued_ms) == (0, 0, 0, None)


async def _due(q: Queue) -> bool:
    return (await snapshot_queues(q.redis, [q.name]))[q.name].due_delayed == 1


async def test_snapshot_counts_in_flight_and_run_time(redis_url: str) -> None:
    gate = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url), concurrency=3)

    @worker.processor("s3")
    async def handle(job: Job[Any]) -> None:
        await gate.wait()

    async with Queue("s3", redis_url=redis_url) as q, running(worker):
        await q.enqueue_many([{}] * 5)

        async def three_active() -> bool:
            return (await snapshot_queues(q.redis, ["s3"]))["s3"].active == 3

        await eventually(three_active, timeout=5, description="3 in flight")
        snap = (await snapshot_queues(q.redis, ["s3"]))["s3"]
        assert (snap.waiting, snap.active, snap.completed) == (2, 3, 0)
        await asyncio.sleep(0.05)  # let measurable run time accrue before the gate opens
        gate.set()

        async def drained() -> bool:
            return (await snapshot_queues(q.redis, ["s3"]))["s3"].completed == 5

        await eventually(drained, timeout=5, description="drained")
        snap = (await snapshot_queues(q.redis, ["s3"]))["s3"]
    assert snap.busy_ms >= 3 * 50
    assert snap.backlog == snap.active == 0
