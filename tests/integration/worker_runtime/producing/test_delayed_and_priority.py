"""Delayed jobs start on time; priorities order jobs (higher first, FIFO within one)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobSpec, Queue, QueueConfig, Worker
from worker_runtime.producing.queue import InvalidJobSpec

pytestmark = pytest.mark.integration


async def _completed(q: Queue, n: int) -> bool:
    return (await q.counts())["completed"] >= n


async def test_delayed_jobs_start_within_100ms_of_due_on_idle_workers(redis_url: str) -> None:
    workers = [Worker(settings=fast_settings(redis_url)) for _ in range(3)]
    for w in workers:

        @w.processor("later")
        async def handle(job: Job[Any]) -> None:
            pass

    async with Queue("later", redis_url=redis_url) as q:
        for w in workers:
            await w.start()
        try:
            # Workers are idle (blocked); due times are spread and interleaved.
            # The first due time leaves room for 16 sequential enqueues on a loaded CI machine.
            delays = [0.6 + (i % 5) * 0.11 for i in range(15)]
            ids = [(await q.enqueue({"i": i}, delay_seconds=d)).id for i, d in enumerate(delays)]
            at = time.time() + 0.9
            absolute = await q.enqueue({"abs": True}, run_at=datetime.fromtimestamp(at, UTC))
            assert (await q.get_job(absolute.id)).due_at == round(at * 1000)  # type: ignore[union-attr]
            assert (await q.counts())["delayed"] == 16
            await eventually(lambda: _completed(q, 16), timeout=5, description="16 completed")
            records = [await q.get_job(i) for i in [*ids, absolute.id]]
        finally:
            for w in workers:
                await w.stop(grace_seconds=2)
    # Both times are Redis' clock: due time and lease (start) time.
    late = [r.started_at - r.due_at for r in records if r and r.started_at and r.due_at]
    assert len(late) == 16
    assert min(late) >= 0
    assert max(late) < 100, f"lateness ms: {sorted(late)}"


async def test_run_at_in_the_past_runs_now_and_bad_times_are_refused(redis_url: str) -> None:
    async with Queue("abs", redis_url=redis_url) as q:
        past = await q.enqueue({}, run_at=time.time() - 60)
        assert (await q.get_job(past.id)).state == "waiting"  # type: ignore[union-attr]
        with pytest.raises(InvalidJobSpec, match=r"^run_at: .*naive"):
            await q.enqueue({}, run_at=datetime(2030, 1, 1))
        with pytest.raises(InvalidJobSpec, match=r"^run_at: give either"):
            await q.enqueue({}, run_at=time.time() + 5, delay_seconds=1)
        with pytest.raises(InvalidJobSpec, match=r"^priority: must be between"):
            await q.enqueue({}, priority=10**7)
        assert (await q.counts())["waiting"] == 1  # nothing half-added


async def test_priorities_run_highest_first_fifo_within_and_plain_jobs_at_zero(
    redis_url: str,
) -> None:
    order: list[str] = []
    worker = Worker(settings=fast_settings(redis_url, fetch_batch=1))

    @worker.processor("prio", config=QueueConfig(concurrency=1))
    async def handle(job: Job[Any]) -> None:
        order.append(job.data["n"])

    plan = [("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 100), ("g", -3), ("h", 1)]
    async with Queue("prio", redis_url=redis_url) as q:
        await q.enqueue_many([JobSpec(data={"n": n}, priority=p) for n, p in plan])
        assert (await q.counts())["waiting"] == len(plan)
        rec = await q.get_job((await q.enqueue({"n": "i"}, priority=-3)).id)
        assert rec is not None
        assert rec.priority == -3
        async with running(worker):
            await eventually(lambda: _completed(q, 9), timeout=5, description="all ran")
    assert order == ["f", "b", "d", "h", "a", "e", "c", "g", "i"]


async def test_priority_survives_delay_retry_and_stays_ordered(redis_url: str) -> None:
    order: list[str] = []
    gate = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url, fetch_batch=1))

    @worker.processor("prio2", config=QueueConfig(concurrency=1))
    async def handle(job: Job[Any]) -> None:
        await gate.wait()
        order.append(job.data["n"])

    async with Queue("prio2", redis_url=redis_url) as q:
        await q.enqueue({"n": "first"})  # occupies the single slot
        async with running(worker):
            await eventually(lambda: _active(q), timeout=5, description="the first job running")
            await q.enqueue({"n": "low"}, priority=1)
            await q.enqueue({"n": "plain"})
            await q.enqueue({"n": "high-delayed"}, priority=9, delay_seconds=0.05)
            await eventually(lambda: _promoted(q), timeout=5, description="delayed job promoted")
            gate.set()
            await eventually(lambda: _completed(q, 4), timeout=5, description="all ran")
    assert order == ["first", "high-delayed", "low", "plain"]


async def _active(q: Queue) -> bool:
    return (await q.counts())["active"] == 1


async def _promoted(q: Queue) -> bool:
    # A fetch promotes due jobs; the busy worker fetches nothing, so promote by looking.
    await q.scripts.fetch(
        keys=[q.keys.wait, q.keys.active, q.keys.delayed, q.keys.marker, q.keys.job_prefix],
        args=[1000, 0, "probe"],
    )
    return (await q.counts())["delayed"] == 0


async def test_a_busy_worker_passes_on_a_wake_up_meant_for_an_idle_one(redis_url: str) -> None:
    """A worker that woke on its own timer for a due job keeps its block pending; a wake-up it
    takes while busy must reach the idle worker instead of waiting out the 5 s idle block."""
    gate = asyncio.Event()
    started: dict[str, float] = {}
    workers = [Worker(settings=fast_settings(redis_url)) for _ in range(2)]
    for w in workers:

        @w.processor("handoff", config=QueueConfig(concurrency=1))
        async def handle(job: Job[Any]) -> None:
            started[job.data["n"]] = time.monotonic()
            if job.data["n"] == "due":
                await gate.wait()

    async with Queue("handoff", redis_url=redis_url) as q:
        for w in workers:
            await w.start()
        try:
            await q.enqueue({"n": "due"}, delay_seconds=0.2)
            await eventually(lambda: _started(started, "due"), timeout=5, description="due job")
            enqueued = time.monotonic()
            await q.enqueue({"n": "ready"})
            await eventually(lambda: _started(started, "ready"), timeout=5, description="ready")
            gate.set()
        finally:
            for w in workers:
                await w.stop(grace_seconds=2)
    assert started["ready"] - enqueued < 0.5


async def _started(started: dict[str, float], name: str) -> bool:
    return name in started
