"""The worker against a real Redis: processing, concurrency limits, progress, results."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobResult, JobState, Processor, Queue, QueueConfig, Worker

pytestmark = pytest.mark.integration


class Order(BaseModel):
    order_id: int


async def test_processes_every_job_once(redis_url: str) -> None:
    seen: list[int] = []
    worker = Worker(settings=fast_settings(redis_url), concurrency=10)

    @worker.processor("orders")
    async def handle(job: Job[Order]) -> dict[str, int]:
        seen.append(job.data.order_id)  # validated into the model
        return {"ok": job.data.order_id}

    async with Queue("orders", redis_url=redis_url) as q, running(worker):
        jobs = await q.enqueue_many([{"order_id": i} for i in range(500)])
        await eventually(lambda: _completed(q, 500), timeout=10, description="500 completed")
        rec = await q.get_job(jobs[0].id)
    assert sorted(seen) == list(range(500))
    assert rec is not None
    assert rec.state is JobState.COMPLETED
    assert rec.result == {"ok": 0}
    assert rec.attempts == 1


async def _completed(q: Queue, n: int) -> bool:
    return (await q.counts())["completed"] >= n


async def test_per_queue_concurrency_and_worker_cap(redis_url: str) -> None:
    running_now: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0, "total": 0}
    release = asyncio.Event()

    def make(queue: str) -> Any:
        async def handle(job: Job[Any]) -> None:
            running_now[queue] += 1
            peak[queue] = max(peak[queue], running_now[queue])
            peak["total"] = max(peak["total"], running_now["a"] + running_now["b"])
            await release.wait()
            running_now[queue] -= 1

        return handle

    worker = Worker(settings=fast_settings(redis_url), concurrency=4, max_jobs_per_worker=6)
    worker.register(make("a"), queue="a")  # service default: 4
    worker.register(make("b"), queue="b", concurrency=3)
    async with (
        Queue("a", redis_url=redis_url) as qa,
        Queue("b", redis_url=redis_url) as qb,
        running(worker),
    ):
        await qa.enqueue_many([{}] * 20)
        await qb.enqueue_many([{}] * 20)

        async def saturated() -> bool:
            return running_now["a"] + running_now["b"] == 6

        await eventually(saturated, timeout=5, description="6 jobs running")
        # Give the fetch loops a chance to overshoot if the caps were broken.
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert peak["a"] <= 4
        assert peak["b"] <= 3
        assert peak["total"] == 6
        release.set()
        await eventually(lambda: _completed(qa, 20), timeout=10, description="a drained")
        await eventually(lambda: _completed(qb, 20), timeout=10, description="b drained")


class Resize(BaseModel):
    width: int


class ResizeProcessor(Processor[Resize]):
    queue = "images"
    config = QueueConfig(concurrency=2)

    async def process(self, job: Job[Resize]) -> JobResult:
        await job.progress(0.5)
        await job.progress({"step": "upload", "progress": 0.9})
        return JobResult(data={"w": job.data.width})


async def test_processor_class_progress_and_job_result(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))
    worker.register(ResizeProcessor())
    async with Queue("images", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({"width": 640})
        await eventually(lambda: _completed(q, 1), timeout=5, description="completed")
        rec = await q.get_job(job.id)
    assert rec is not None
    assert rec.result == {"w": 640}
    assert rec.progress == {"step": "upload", "progress": 0.9}


async def test_invalid_payload_goes_to_dead_letter_and_worker_goes_on(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))
    worker.register(ResizeProcessor())
    async with Queue("images", redis_url=redis_url) as q, running(worker):
        bad = await q.enqueue({"width": "wide"})
        good = await q.enqueue({"width": 10})
        await eventually(lambda: _completed(q, 1), timeout=5, description="good job done")

        async def dead() -> bool:
            return (await q.counts())["dead"] == 1

        await eventually(dead, timeout=5, description="bad job dead-lettered")
        (rec,) = await q.dead_letters()
        good_rec = await q.get_job(good.id)
    assert rec.id == bad.id
    assert rec.attempts == 1  # validation errors are not retried
    assert rec.error is not None
    assert "invalid payload" in rec.error
    assert "width" in rec.error
    assert rec.data == {"width": "wide"}
    assert good_rec is not None
    assert good_rec.state is JobState.COMPLETED


async def test_job_result_failure_fails_the_attempt(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))
    cfg = QueueConfig(retry={"attempts": 1})  # type: ignore[arg-type]

    @worker.processor("r", config=cfg)
    async def handle(job: Job[Any]) -> JobResult:
        return JobResult(success=False, error="quota exceeded")

    async with Queue("r", redis_url=redis_url) as q, running(worker):
        await q.enqueue({})

        async def dead() -> bool:
            return (await q.counts())["dead"] == 1

        await eventually(dead, timeout=5, description="dead-lettered")
        (rec,) = await q.dead_letters()
    assert rec.error == "quota exceeded"
