"""Retries, backoff, timeouts, non-retryable errors and the dead-letter store."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, NonRetryableError, Queue, QueueConfig, RetryPolicy, Worker
from worker_runtime.core.backoff import Backoff

pytestmark = pytest.mark.integration


def policy(attempts: int, kind: str = "fixed", delay: float = 0.0, cap: float = 60) -> QueueConfig:
    backoff = Backoff(type=kind, delay_seconds=delay, max_delay_seconds=cap, jitter=False)  # type: ignore[arg-type]
    return QueueConfig(retry=RetryPolicy(attempts=attempts, backoff=backoff))


async def _dead(q: Queue, n: int = 1) -> bool:
    return (await q.counts())["dead"] >= n


async def test_retries_then_succeeds(redis_url: str) -> None:
    calls: list[int] = []
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("flaky", config=policy(3))
    async def handle(job: Job[Any]) -> str:
        calls.append(job.attempt)
        if job.attempt < 3:
            raise RuntimeError(f"boom {job.attempt}")
        return "ok"

    async with Queue("flaky", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})

        async def done() -> bool:
            return (await q.counts())["completed"] == 1

        await eventually(done, timeout=5, description="completed after retries")
        rec = await q.get_job(job.id)
        counts = await q.counts()
    assert calls == [1, 2, 3]
    assert rec is not None
    assert rec.attempts == 3
    assert [h.error for h in rec.history] == ["boom 1", "boom 2"]
    assert counts["failed"] == 0


async def test_exponential_backoff_delays_between_attempts(redis_url: str) -> None:
    starts: list[float] = []
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("backoff", config=policy(3, "exponential", delay=0.3, cap=10))
    async def handle(job: Job[Any]) -> None:
        starts.append(asyncio.get_running_loop().time())
        raise RuntimeError("again")

    async with Queue("backoff", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})
        await eventually(lambda: _dead(q), timeout=10, description="dead after 3 attempts")
        rec = await q.get_job(job.id)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 3
    # 0.3 s then 0.6 s (no jitter); allow scheduling slack above, never below.
    assert 0.28 <= gaps[0] < 0.6
    assert 0.58 <= gaps[1] < 1.0
    assert rec is not None
    assert [h.attempt for h in rec.history] == [1, 2, 3]


async def test_timeout_cancels_the_attempt(redis_url: str) -> None:
    cancelled = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url))
    cfg = policy(2).model_copy(update={"timeout_seconds": 0.2})

    @worker.processor("slow", config=cfg)
    async def handle(job: Job[Any]) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with Queue("slow", redis_url=redis_url) as q, running(worker):
        await q.enqueue({})
        await eventually(lambda: _dead(q), timeout=5, description="dead after timeouts")
        (rec,) = await q.dead_letters()
    assert cancelled.is_set()
    assert rec.attempts == 2
    assert rec.error == "timed out after 0.2 s"
    assert all(h.error_type == "JobTimeout" for h in rec.history)


async def test_non_retryable_error_skips_remaining_attempts(redis_url: str) -> None:
    calls = 0
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("nr", config=policy(5))
    async def handle(job: Job[Any]) -> None:
        nonlocal calls
        calls += 1
        raise NonRetryableError("card declined")

    async with Queue("nr", redis_url=redis_url) as q, running(worker):
        await q.enqueue({})
        await eventually(lambda: _dead(q), timeout=5, description="dead at once")
        (rec,) = await q.dead_letters()
    assert calls == 1
    assert rec.error == "card declined"


async def test_dead_letter_content_replay_and_purge(redis_url: str) -> None:
    fail = True
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("dl", config=policy(2))
    async def handle(job: Job[Any]) -> str:
        if fail:
            raise ValueError(f"bad item {job.data['item']}")
        return "fixed"

    async with Queue("dl", redis_url=redis_url) as q, running(worker):
        jobs = await q.enqueue_many([{"item": i} for i in range(3)])
        await eventually(lambda: _dead(q, 3), timeout=5, description="3 dead")
        dead = {rec.id: rec for rec in await q.dead_letters()}
        assert set(dead) == {j.id for j in jobs}
        rec = dead[jobs[1].id]
        assert rec.data == {"item": 1}
        assert rec.error == "bad item 1"
        assert rec.traceback is not None
        assert "ValueError: bad item 1" in rec.traceback
        assert [(h.attempt, h.error, h.error_type) for h in rec.history] == [
            (1, "bad item 1", "ValueError"),
            (2, "bad item 1", "ValueError"),
        ]
        assert all(h.finished_at and h.started_at for h in rec.history)
        assert (await q.counts())["failed"] == 3

        fail = False
        assert await q.replay_dead([jobs[0].id]) == 1

        async def one_done() -> bool:
            return (await q.counts())["completed"] == 1

        await eventually(one_done, timeout=5, description="replayed job completed")
        replayed = await q.get_job(jobs[0].id)
        assert replayed is not None
        assert replayed.replays == 1
        assert len(replayed.history) == 2  # kept for the record
        assert await q.purge_dead() == 2
        assert (await q.counts())["dead"] == 0
        assert await q.get_job(jobs[2].id) is None


async def test_dead_letter_off_keeps_job_as_failed(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))
    cfg = policy(1).model_copy(update={"dead_letter": False})

    @worker.processor("nodl", config=cfg)
    async def handle(job: Job[Any]) -> None:
        raise RuntimeError("x")

    async with Queue("nodl", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})

        async def failed() -> bool:
            return (await q.counts())["failed"] == 1

        await eventually(failed, timeout=5, description="failed")
        rec = await q.get_job(job.id)
        assert (await q.counts())["dead"] == 0
    assert rec is not None
    assert rec.state.value == "failed"


async def test_pool_settings_fill_what_the_processor_left_unset(redis_url: str) -> None:
    """WORKER_RETRY / WORKER_TIMEOUT_SECONDS (from a WorkerPool) are defaults, not overrides."""
    settings = fast_settings(
        redis_url,
        WORKER_RETRY='{"attempts": 2, "backoff": {"type": "fixed", "delaySeconds": 0}}',
        WORKER_TIMEOUT_SECONDS=0.2,
    )
    worker = Worker(settings=settings)
    calls = {"pool": 0, "own": 0}

    @worker.processor("pool")
    async def pool_defaults(job: Job[Any]) -> None:
        calls["pool"] += 1
        await asyncio.sleep(5)  # beyond the pool's 0.2 s timeout

    @worker.processor("own", config=policy(3))  # its own retry wins; timeout from the pool
    async def own_retry(job: Job[Any]) -> None:
        calls["own"] += 1
        await asyncio.sleep(5)

    async with (
        Queue("pool", redis_url=redis_url) as qp,
        Queue("own", redis_url=redis_url) as qo,
        running(worker),
    ):
        await qp.enqueue({})
        await qo.enqueue({})
        await eventually(lambda: _dead(qp), timeout=10, description="pool job dead")
        await eventually(lambda: _dead(qo), timeout=10, description="own job dead")
        (pool_rec,) = await qp.dead_letters()
    assert calls == {"pool": 2, "own": 3}
    assert pool_rec.error == "timed out after 0.2 s"
