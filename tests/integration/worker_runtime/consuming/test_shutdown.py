"""Graceful shutdown: stop fetching, finish in-flight jobs, hand back the rest uncharged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings
from tests.integration.worker_runtime.processes import output_of, sigterm_and_wait, start_worker
from worker_runtime import Job, JobState, Queue, Worker
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration


async def test_in_flight_jobs_finish_within_grace(redis_url: str) -> None:
    started = 0
    finished = 0
    worker = Worker(settings=fast_settings(redis_url), concurrency=5)

    @worker.processor("g")
    async def handle(job: Job[Any]) -> None:
        nonlocal started, finished
        started += 1
        await asyncio.sleep(0.3)
        finished += 1

    async with Queue("g", redis_url=redis_url) as q:
        await q.enqueue_many([{}] * 20)
        await worker.start()

        async def five_running() -> bool:
            return started == 5

        await eventually(five_running, timeout=5, description="5 jobs started")
        await worker.stop(grace_seconds=5)
        counts = await q.counts()
    assert started == finished == 5  # no new fetches after stop, every started job finished
    assert counts["completed"] == 5
    assert counts["waiting"] == 15
    assert counts["active"] == 0


async def test_unfinished_jobs_return_to_queue_without_an_attempt(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url), concurrency=3)

    @worker.processor("g")
    async def handle(job: Job[Any]) -> None:
        await asyncio.sleep(60)

    async with Queue("g", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([{}] * 3)
        await worker.start()

        async def three_active() -> bool:
            return (await q.counts())["active"] == 3

        await eventually(three_active, timeout=5, description="3 active")
        await worker.stop(grace_seconds=0.2)
        counts = await q.counts()
        recs = [await q.get_job(j.id) for j in jobs]
        order = await q.redis.lrange(q.keys.wait, 0, -1)
        stats = await q.redis.hgetall(q.keys.stats)
    assert counts == {"waiting": 3, "active": 0, "delayed": 0, "completed": 0, "failed": 0,
                      "dead": 0}  # fmt: skip
    assert all(r is not None and r.state is JobState.WAITING and r.attempts == 0 for r in recs)
    assert sorted(order) == sorted(j.id for j in jobs)
    # Counted where it outlives the worker: runs interrupted by a shutdown (scale-down).
    assert int(stats["released"]) == 3


class Outcomes(WorkerObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def job_released(self, job: Job[Any]) -> None:
        self.seen.append(("released", job.data["i"]))

    def jobs_completed(self, queue: str, completions: Any) -> None:
        self.seen += [("completed", job.data["i"]) for job, _, _ in completions]


async def test_a_run_that_finishes_after_the_drain_cancel_is_not_handed_back(
    redis_url: str,
) -> None:
    """Past the grace, drain() cancels what still runs. A processor that catches that and
    returns at once has finished: its job is acknowledged, not also handed back (which would
    run it again); the one that honours the cancel is handed back."""
    seen = Outcomes()
    worker = Worker(settings=fast_settings(redis_url), concurrency=2, observers=[seen])

    @worker.processor("gf")
    async def handle(job: Job[Any]) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if job.data["i"] == 0:
                return "finished after all"
            raise
        return "slept"

    async with Queue("gf", redis_url=redis_url) as q:
        swallows, honours = await q.enqueue_many([{"i": 0}, {"i": 1}])
        await worker.start()

        async def two_active() -> bool:
            return (await q.counts())["active"] == 2

        await eventually(two_active, timeout=5, description="2 active")
        await worker.stop(grace_seconds=0.2)
        done = await q.get_job(swallows.id)
        back = await q.get_job(honours.id)
    assert done is not None
    assert done.state is JobState.COMPLETED
    assert back is not None
    assert back.state is JobState.WAITING
    assert back.attempts == 0
    assert sorted(seen.seen) == [("completed", 0), ("released", 1)]


async def test_sigterm_drains_and_exits_zero(redis_url: str) -> None:
    client = connect(redis_url)
    async with Queue("rec", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([{"ms": 400}] * 10)
        proc = start_worker(redis_url, "--concurrency", "4")
        try:

            async def busy() -> bool:
                return await client.hlen("test:started") >= 4

            await eventually(busy, timeout=15, description="worker busy")
            rc = await asyncio.to_thread(sigterm_and_wait, proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        output = output_of(proc)
        started = await client.hgetall("test:started")
        executed = await client.hgetall("test:exec")
        counts = await q.counts()
        missing = [j for j in jobs if j.id not in executed]
        states = [await q.get_job(j.id) for j in missing]
    await client.aclose()
    assert rc == 0, output
    assert "Traceback" not in output
    # Every job the worker started, it finished; the rest wait, uncharged.
    assert set(started) == set(executed)
    assert counts["active"] == 0
    assert counts["completed"] == len(executed)
    assert counts["waiting"] == 10 - len(executed), (counts, states, output)
