"""Queue API against a real Redis: enqueue, bulk, dedup, counts, get, remove."""

from __future__ import annotations

import pytest

from worker_runtime import JobActiveError, JobSpec, JobState, Queue

pytestmark = pytest.mark.integration


async def test_enqueue_and_get(redis_url: str) -> None:
    async with Queue("emails", redis_url=redis_url) as q:
        job = await q.enqueue({"to": "a@b.c"})
        assert job.added
        rec = await q.get_job(job.id)
        assert rec is not None
        assert rec.state is JobState.WAITING
        assert rec.data == {"to": "a@b.c"}
        assert rec.attempts == 0
        assert await q.counts() == {
            "waiting": 1, "active": 0, "delayed": 0, "completed": 0, "failed": 0, "dead": 0,
        }  # fmt: skip


async def test_caller_id_dedups(redis_url: str) -> None:
    async with Queue("emails", redis_url=redis_url) as q:
        first = await q.enqueue({"v": 1}, id="order-42")
        second = await q.enqueue({"v": 2}, id="order-42")
        assert (first.id, first.added) == ("order-42", True)
        assert (second.id, second.added) == ("order-42", False)
        rec = await q.get_job("order-42")
        assert rec is not None
        assert rec.data == {"v": 1}  # the existing job, unchanged
        assert (await q.counts())["waiting"] == 1


async def test_enqueue_many_in_chunks_keeps_order_and_dedups(redis_url: str) -> None:
    async with Queue("bulk", redis_url=redis_url) as q:
        specs = [JobSpec(data={"i": i}, id=f"j{i}") for i in range(2500)]
        specs.append(JobSpec(data={"i": -1}, id="j7"))  # duplicate inside the batch
        jobs = await q.enqueue_many(specs)
        assert len(jobs) == 2501
        assert sum(j.added for j in jobs) == 2500
        assert not jobs[-1].added
        assert await q.redis.lrange(q.keys.wait, 0, 2) == ["j0", "j1", "j2"]
        assert (await q.counts())["waiting"] == 2500


async def test_delayed_job_is_counted_as_delayed(redis_url: str) -> None:
    async with Queue("later", redis_url=redis_url) as q:
        job = await q.enqueue({"x": 1}, delay_seconds=60)
        rec = await q.get_job(job.id)
        assert rec is not None
        assert rec.state is JobState.DELAYED
        assert rec.due_at is not None
        assert rec.enqueued_at is not None
        assert 59_000 <= rec.due_at - rec.enqueued_at <= 60_000
        assert (await q.counts())["delayed"] == 1


async def test_remove(redis_url: str) -> None:
    async with Queue("rm", redis_url=redis_url) as q:
        a = await q.enqueue({"a": 1})
        b = await q.enqueue({"b": 1}, delay_seconds=30)
        assert await q.remove(a.id)
        assert await q.remove(b.id)
        assert not await q.remove("nope")
        assert await q.get_job(a.id) is None
        counts = await q.counts()
        assert counts["waiting"] == counts["delayed"] == 0


async def test_remove_refuses_an_active_job(redis_url: str) -> None:
    async with Queue("rm", redis_url=redis_url) as q:
        job = await q.enqueue({})
        # Lease it the way a worker does.
        await q.scripts.fetch(
            keys=[q.keys.wait, q.keys.active, q.keys.delayed, q.keys.marker, q.keys.job_prefix],
            args=[10_000, 1, "w1"],
        )
        with pytest.raises(JobActiveError):
            await q.remove(job.id)


async def test_unreachable_redis_raises_connection_error() -> None:
    from worker_runtime.redis_io.connection import CONNECTION_ERRORS

    async with Queue("x", redis_url="redis://127.0.0.1:1/0") as q:
        with pytest.raises(CONNECTION_ERRORS):
            await q.enqueue({})
