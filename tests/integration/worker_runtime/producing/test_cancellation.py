"""Cancellation at each state: waiting (plain, prioritized, parked by a group limit), delayed,
waiting for children, active (its task is cancelled, not retried), and after it finished."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobState, Queue, QueueConfig, Worker
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.rate_limit import GroupRateLimit

pytestmark = pytest.mark.integration


async def _state(q: Queue, job_id: str) -> JobState | None:
    rec = await q.get_job(job_id)
    return rec.state if rec else None


async def test_cancelled_jobs_in_every_waiting_state_never_run(redis_url: str) -> None:
    ran: list[str] = []
    worker = Worker(settings=fast_settings(redis_url))
    limit = GroupRateLimit(key="tenant", max=1, per_seconds=60)

    @worker.processor("cx", config=QueueConfig(group_rate_limit=limit))
    async def handle(job: Job[Any]) -> None:
        ran.append(job.data["n"])

    async with Queue("cx", redis_url=redis_url) as q:
        plain = await q.enqueue({"n": "plain"})
        await q.enqueue({"n": "prio"}, priority=3)
        # Due after the other five ran even on a loaded machine; cancelled before it is due.
        delayed = await q.enqueue({"n": "delayed"}, delay_seconds=3)
        flow = await q.enqueue_flow({"n": "parent"}, [{"n": "child"}])
        # Tenant t's second job is parked by its limit (one a minute).
        await q.enqueue_many([{"n": "t1", "tenant": "t"}, {"n": "t2", "tenant": "t"}])
        async with running(worker):
            await eventually(lambda: _ran(ran, 5), timeout=5, description="five ran")
            assert sorted(ran) == ["child", "parent", "plain", "prio", "t1"]
            assert (await q.counts())["waiting"] == 1  # t2, parked
            (t2,) = await q.redis.lrange(q.keys.group_parked_prefix + "t", 0, -1)
            assert await q.cancel(t2)
            assert await q.cancel(delayed.id)
            # A later job that does run proves the worker went past the cancelled one's due time.
            rec = await q.get_job(delayed.id)
            assert rec is not None
            assert rec.due_at is not None
            await q.enqueue({"n": "sentinel"}, run_at=(rec.due_at + 200) / 1000)
            await eventually(lambda: _ran(ran, 6), timeout=10, description="the sentinel")
        assert ran[-1] == "sentinel"
        assert await _state(q, delayed.id) is JobState.CANCELLED
        counts = await q.counts()
        assert (counts["cancelled"], counts["waiting"], counts["delayed"]) == (2, 0, 0)
        assert not await q.cancel(plain.id)  # finished already
        assert not await q.cancel(flow.parent_id)
        assert not await q.cancel("no-such-job")


async def _ran(ran: list[str], n: int) -> bool:
    return len(ran) >= n


async def test_cancel_before_a_worker_runs(redis_url: str) -> None:
    async with Queue("cx2", redis_url=redis_url) as q:
        jobs = [
            await q.enqueue({"n": 1}),
            await q.enqueue({"n": 2}, priority=-2),
            await q.enqueue({"n": 3}, delay_seconds=60),
        ]
        flow = await q.enqueue_flow({"parent": 1}, [{"c": 1}], on_child_failure="fail")
        for job in jobs:
            assert await q.cancel(job.id, reason="not needed")
        assert await q.cancel(flow.parent_id)
        counts = await q.counts()
        # The child still waits: cancelling a parent leaves its children alone.
        assert counts == {
            "waiting": 1, "active": 0, "delayed": 0, "completed": 0, "failed": 0, "dead": 0,
            "cancelled": 4,
        }  # fmt: skip
        rec = await q.get_job(jobs[0].id)
        assert rec is not None
        assert (rec.state, rec.error) == (JobState.CANCELLED, "not needed")
        assert await q.remove(jobs[0].id)
        assert (await q.counts())["cancelled"] == 3


class Cancelled(WorkerObserver):
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.other: list[tuple[str, str]] = []  # any other outcome reported

    def job_cancelled(self, job: Job[Any]) -> None:
        self.ids.append(job.id)

    def job_completed(self, job: Job[Any], **kwargs: Any) -> None:
        self.other.append(("completed", job.id))

    def job_failed(self, job: Job[Any], **kwargs: Any) -> None:
        self.other.append(("failed", job.id))

    def job_lease_lost(self, job: Job[Any]) -> None:
        self.other.append(("lease_lost", job.id))


async def test_cancel_an_active_job_cancels_its_task_and_does_not_retry(redis_url: str) -> None:
    seen = Cancelled()
    task_cancelled = asyncio.Event()
    attempts: list[int] = []
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])

    @worker.processor("cx3")
    async def handle(job: Job[Any]) -> None:
        attempts.append(job.attempt)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            task_cancelled.set()
            raise

    async with Queue("cx3", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})
        await eventually(lambda: _active(q), timeout=5, description="running")
        assert await q.cancel(job.id)
        await asyncio.wait_for(task_cancelled.wait(), timeout=2)  # lease renewal: 1/3 s
        await eventually(lambda: _idle(worker), timeout=2, description="slot freed")
        rec = await q.get_job(job.id)
        counts = await q.counts()
    assert seen.ids == [job.id]
    assert attempts == [1]
    assert rec is not None
    assert rec.state is JobState.CANCELLED
    assert (counts["active"], counts["failed"], counts["dead"], counts["cancelled"]) == (0, 0, 0, 1)


@pytest.mark.parametrize("then", ["returns", "raises"])
async def test_a_cancelled_run_that_swallows_the_cancel_is_still_cancelled(
    redis_url: str, then: str
) -> None:
    """The processor catches the CancelledError and returns (or raises something else): the
    job is still reported cancelled, once, and nothing else is reported of that run."""
    seen = Cancelled()
    swallowed = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])

    @worker.processor("cx4")
    async def handle(job: Job[Any]) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            swallowed.set()
        if then == "raises":
            raise RuntimeError("after the cancel")
        return "done anyway"

    async with Queue("cx4", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})
        await eventually(lambda: _active(q), timeout=5, description="running")
        assert await q.cancel(job.id)
        await asyncio.wait_for(swallowed.wait(), timeout=2)
        await eventually(lambda: _idle(worker), timeout=2, description="slot freed")

        async def reported() -> bool:
            return bool(seen.ids)

        await eventually(reported, timeout=2, description="reported cancelled")
        rec = await q.get_job(job.id)
    assert seen.ids == [job.id]
    assert seen.other == []
    assert rec is not None
    assert rec.state is JobState.CANCELLED


async def test_a_job_cancelled_after_its_processor_returned_is_reported_cancelled(
    redis_url: str,
) -> None:
    """Cancelled between the processor's return and the ack: Redis refuses the ack, and the
    run's one closing hook is job_cancelled (no completion, no empty batch)."""
    seen = Cancelled()
    batches: list[int] = []

    class Batches(WorkerObserver):
        def jobs_completed(self, queue: str, completions: Any) -> None:
            batches.append(len(completions))

    worker = Worker(settings=fast_settings(redis_url), observers=[seen, Batches()])
    q = Queue("cx5", redis_url=redis_url)

    @worker.processor("cx5")
    async def handle(job: Job[Any]) -> None:
        assert await q.cancel(job.id)  # after this returns, only the ack is left

    async with q, running(worker):
        job = await q.enqueue({})

        async def reported() -> bool:
            return bool(seen.ids)

        await eventually(reported, timeout=5, description="reported cancelled")
        rec = await q.get_job(job.id)
        processed = worker.processed
    assert seen.ids == [job.id]
    assert seen.other == []
    assert batches == []
    assert processed == 0
    assert rec is not None
    assert rec.state is JobState.CANCELLED


async def _active(q: Queue) -> bool:
    return (await q.counts())["active"] == 1


async def _idle(worker: Worker) -> bool:
    return worker.active == 0


async def test_sync_producers_cancel_too(redis_server: RedisServer) -> None:
    # SyncQueue speaks to a standalone Redis only: this test runs there, not on the cluster.
    from worker_runtime.producing.sync import SyncQueue

    async with Queue("cx4", redis_url=redis_server.url) as aq:
        await aq.redis.flushall()
    with SyncQueue("cx4", redis_url=redis_server.url) as q:
        job = q.enqueue({"n": 1}, priority=4)
        assert q.cancel(job.id, reason="changed my mind")
        assert not q.cancel(job.id)
        rec = q.get_job(job.id)
        assert rec is not None
        assert (rec.state, rec.error) == (JobState.CANCELLED, "changed my mind")
        assert q.counts()["cancelled"] == 1
