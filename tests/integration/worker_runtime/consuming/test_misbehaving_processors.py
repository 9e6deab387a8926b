"""Processors that misbehave get a defined outcome (docs/runtime.md, "Misbehaving processors"):
a BaseException from user code fails the attempt; a processor ignoring cancellation cannot hang
shutdown (its job is handed back) nor keep its lease past its timeout plus the grace."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.misbehaving_apps import RAISE
from tests.integration.worker_runtime.processes import output_of, sigterm_and_wait, start_worker
from worker_runtime import Job, JobState, Queue, QueueConfig, Worker
from worker_runtime.consuming.consumer import CANCEL_GRACE_SECONDS
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration

APP = "tests.integration.worker_runtime.misbehaving_apps:app"


async def test_base_exceptions_from_a_processor_fail_the_attempt(redis_url: str) -> None:
    """CancelledError, SystemExit, KeyboardInterrupt, GeneratorExit and a BaseException of the
    user's: each attempt fails (2 attempts, then dead), no stall, the worker lives on."""
    client = connect(redis_url)
    async with Queue("bad", redis_url=redis_url) as q:
        bad = {name: (await q.enqueue({"raise": name})).id for name in RAISE}
        good = await q.enqueue_many([{}] * 5)
        proc = start_worker(redis_url, app=APP)
        try:

            async def settled() -> bool:
                counts = await q.counts()
                return counts["dead"] == len(bad) and counts["completed"] == len(good)

            await eventually(settled, timeout=30, description="bad jobs dead, good ones done")
            alive = proc.poll() is None
            rc = await asyncio.to_thread(sigterm_and_wait, proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        records = {name: await q.get_job(job_id) for name, job_id in bad.items()}
        started = await client.hgetall("test:started")
    await client.aclose()
    output = output_of(proc)
    assert alive, output
    assert rc == 0, output
    for name, rec in records.items():
        assert rec is not None
        assert rec.state is JobState.DEAD, (name, rec)
        assert rec.error == f"processor raised {name}: from the processor", rec.error
        assert (rec.attempts, rec.stalls) == (2, 0), (name, rec)
        assert started[bad[name]] == "2"


async def test_shutdown_is_bounded_when_a_processor_ignores_cancellation(redis_url: str) -> None:
    """`shoal worker` exits 0 within grace + CANCEL_GRACE_SECONDS; the job waits, uncharged."""
    client = connect(redis_url)
    async with Queue("stubborn", redis_url=redis_url) as q:
        job = await q.enqueue({})
        proc = start_worker(redis_url, app=APP, WORKER_SHUTDOWN_GRACE_SECONDS="0.5")
        try:

            async def running_it() -> bool:
                return bool(await client.hget("test:started", job.id))

            await eventually(running_it, timeout=15, description="job running")
            began = time.monotonic()
            rc = await asyncio.to_thread(sigterm_and_wait, proc, 0.5 + CANCEL_GRACE_SECONDS + 15)
            took = time.monotonic() - began
        finally:
            if proc.poll() is None:
                proc.kill()
        rec = await q.get_job(job.id)
        counts = await q.counts()
        ignored = await client.hget("test:ignored", job.id)
    await client.aclose()
    output = output_of(proc)
    assert rc == 0, output
    assert "Traceback" not in output, output
    assert "processor ignored cancellation at shutdown" in output
    assert ignored  # it really did swallow the cancellation
    # Bounded (it would hang for ever otherwise); the margin covers a loaded 2-core machine's
    # interpreter exit and the stores' shutdown.
    assert took < 0.5 + CANCEL_GRACE_SECONDS + 8, took
    assert rec is not None
    assert (rec.state, rec.attempts) == (JobState.WAITING, 0)
    assert (counts["waiting"], counts["active"]) == (1, 0)


async def test_stop_returns_in_process_too(redis_url: str) -> None:
    release = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url), concurrency=1)

    @worker.processor("st")
    async def handle(job: Job[Any]) -> None:
        await ignore_cancellation_until(release)

    async with Queue("st", redis_url=redis_url) as q:
        job = await q.enqueue({})
        await worker.start()
        try:
            await eventually(lambda: _active(q), timeout=5, description="running")
            began = time.monotonic()
            await asyncio.wait_for(worker.stop(grace_seconds=0.2), CANCEL_GRACE_SECONDS + 10)
            took = time.monotonic() - began
            rec = await q.get_job(job.id)
            abandoned = worker.abandoned
        finally:
            release.set()
        # The abandoned run ends later and reports nothing (its job was handed back).
        done, _ = await asyncio.wait(worker.consumers["st"].abandoned, timeout=5)
        after = await q.get_job(job.id)
    assert took < 0.2 + CANCEL_GRACE_SECONDS + 3
    assert abandoned == 1
    assert len(done) == 1
    for record in (rec, after):
        assert record is not None
        assert (record.state, record.attempts) == (JobState.WAITING, 0)
    assert worker.processed == worker.failed == 0


async def test_lease_is_not_renewed_past_timeout_plus_grace(redis_url: str) -> None:
    """A processor ignoring its timeout keeps its lease for timeout + grace, no longer: then
    the job's lease lapses on Redis and a reclaim takes it back (one stall)."""
    release = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url), concurrency=1)
    timeout = 0.5

    @worker.processor("ig", config=QueueConfig(timeout_seconds=timeout, max_stalls=5))
    async def handle(job: Job[Any]) -> None:
        await ignore_cancellation_until(release)

    async with Queue("ig", redis_url=redis_url) as q:
        job = await q.enqueue({})
        async with running(worker, grace=0.2):
            await eventually(lambda: _active(q), timeout=5, description="running")
            began = time.monotonic()

            async def lease_lapsed() -> bool:
                # Redis' own view: the lease deadline (active score) passed, or it was reclaimed.
                score = await q.redis.zscore(q.keys.active, job.id)
                seconds, micros = await q.redis.time()
                return score is None or score < seconds * 1000 + micros // 1000

            await eventually(lease_lapsed, timeout=timeout + CANCEL_GRACE_SECONDS + 10,
                             interval=0.05, description="lease lapsed")  # fmt: skip
            lapsed_after = time.monotonic() - began

            async def reclaimed() -> bool:
                rec = await q.get_job(job.id)
                return rec is not None and rec.stalls == 1

            await eventually(reclaimed, timeout=5, description="reclaimed as stalled")
            release.set()
    # Renewed through the grace (lease 1 s: it would lapse at ~1 s otherwise).
    assert lapsed_after > timeout + CANCEL_GRACE_SECONDS - 1, lapsed_after


class FailureSeen(WorkerObserver):
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def job_failed(self, job: Job[Any], **kwargs: Any) -> None:
        self.failed.append((job.id, kwargs["outcome"]))


async def test_observers_are_not_told_of_a_failure_redis_refused(redis_url: str) -> None:
    """The lease moved to another worker while the job ran: its failure is refused by Redis,
    so no observer records it (no dead-letter row for a job another worker finished)."""
    seen = FailureSeen()
    go = asyncio.Event()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])

    @worker.processor("ob", config=QueueConfig(retry={"attempts": 1}))
    async def handle(job: Job[Any]) -> None:
        await go.wait()
        raise RuntimeError("boom")

    async with Queue("ob", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})
        await eventually(lambda: _active(q), timeout=5, description="running")
        # What a reclaim and another worker's fetch leave: the lease is someone else's.
        await q.redis.hset(q.keys.job(job.id), "lk", "another-worker")
        go.set()
        await eventually(lambda: _idle(worker), timeout=5, description="attempt over")
        rec = await q.get_job(job.id)
        failed = worker.failed
    assert seen.failed == []
    assert failed == 0
    assert rec is not None
    assert rec.state is JobState.ACTIVE  # untouched: the other worker's to finish


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


async def test_an_exception_whose_message_cannot_be_read_fails_the_attempt(
    redis_url: str,
) -> None:
    """str(exc) raising inside the worker's error handling must not kill the job's task (its
    slot leaked, its lease renewed for ever): the attempt fails with the exception's type."""
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("up", config=QueueConfig(retry={"attempts": 1}, concurrency=1))
    async def handle(job: Job[Any]) -> None:
        if job.data.get("bad"):
            raise Unprintable()

    async with Queue("up", redis_url=redis_url) as q, running(worker):
        bad = await q.enqueue({"bad": True})
        good = await q.enqueue({})

        async def settled() -> bool:
            counts = await q.counts()
            return counts["dead"] == 1 and counts["completed"] == 1

        await eventually(settled, timeout=10, description="one dead, one completed")
        rec = await q.get_job(bad.id)
        done = await q.get_job(good.id)
    assert rec is not None
    assert rec.error is not None
    assert rec.error.startswith("Unprintable"), rec.error
    assert done is not None
    assert done.state == "completed"


class CompletionSeen(WorkerObserver):
    def __init__(self) -> None:
        self.one_by_one: list[str] = []
        self.batched: list[str] = []

    def job_completed(self, job: Job[Any], **kwargs: Any) -> None:
        self.one_by_one.append(job.id)

    def jobs_completed(self, queue: str, completions: Any) -> None:
        self.batched += [job.id for job, _, _ in completions]


async def test_observers_are_not_told_of_a_completion_redis_refused(redis_url: str) -> None:
    """The lease moved to another worker while the job ran: its ack is refused by Redis, so no
    observer counts it as completed (no 'completed' row or metric for another worker's run),
    while a job whose ack Redis accepted is reported, once, after the ack."""
    seen = CompletionSeen()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])
    q = Queue("oc", redis_url=redis_url)

    @worker.processor("oc")
    async def handle(job: Job[Any]) -> None:
        if job.data.get("steal"):
            # What a reclaim and another worker's fetch leave: the lease is someone else's.
            await q.redis.hset(q.keys.job(job.id), "lk", "another-worker")

    async with q, running(worker):
        stolen = await q.enqueue({"steal": True})
        await eventually(lambda: _idle(worker), timeout=5, description="run over")
        kept = await q.enqueue({})

        async def completed() -> bool:
            return (await q.counts())["completed"] == 1

        await eventually(completed, timeout=5, description="the other job completed")

        async def reported() -> bool:
            return bool(seen.batched)

        await eventually(reported, timeout=5, description="reported")
        rec = await q.get_job(stolen.id)
        processed = worker.processed
    assert seen.one_by_one == [kept.id]
    assert seen.batched == [kept.id]
    assert processed == 1
    assert rec is not None
    assert rec.state is JobState.ACTIVE  # untouched: the other worker's to finish


async def ignore_cancellation_until(release: asyncio.Event) -> None:
    while not release.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)


async def _active(q: Queue) -> bool:
    return (await q.counts())["active"] == 1


async def _idle(worker: Worker) -> bool:
    return worker.active == 0
