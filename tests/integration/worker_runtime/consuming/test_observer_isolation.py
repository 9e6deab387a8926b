"""An observer that raises never keeps a job from being acknowledged; a result that cannot be
stored fails its job with the reason; a worker whose extension cannot start takes no job."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, Queue, Worker
from worker_runtime.consuming.observers import Completion, WorkerObserver

pytestmark = pytest.mark.integration


class Broken(WorkerObserver):
    def __init__(self) -> None:
        self.calls = 0

    def job_started(self, job: Job[Any]) -> None:
        raise RuntimeError("observer bug")

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")


class Counting(WorkerObserver):
    def __init__(self) -> None:
        self.completed: list[str] = []

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        self.completed.append(job.id)


async def test_a_raising_observer_does_not_touch_the_job_or_other_observers(
    redis_url: str,
) -> None:
    broken, counting = Broken(), Counting()
    worker = Worker(settings=fast_settings(redis_url), observers=[broken, counting])
    runs: list[str] = []

    @worker.processor("observed")
    async def handle(job: Job[Any]) -> str:
        runs.append(job.id)
        return "done \ud800"  # a lone surrogate: the status store must cope too

    async with running(worker), Queue("observed", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([{"n": i} for i in range(5)])

        async def all_completed() -> bool:
            return (await q.counts())["completed"] == 5

        await eventually(all_completed, description="5 completed")
        assert sorted(counting.completed) == sorted(j.id for j in jobs)
        assert broken.calls == 5
    assert sorted(runs) == sorted(j.id for j in jobs)  # each ran once: acknowledged


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "result", [object(), _nested(100_000)], ids=["not JSON", "nested too deep (RecursionError)"]
)
async def test_a_result_that_cannot_be_stored_fails_the_job_with_the_reason(
    redis_url: str, result: object
) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("unstorable")
    async def handle(job: Job[Any]) -> object:
        return result

    async with running(worker), Queue("unstorable", redis_url=redis_url) as q:
        (job,) = await q.enqueue_many([{"n": 1}])

        async def dead() -> bool:
            record = await q.get_job(job.id)
            return record is not None and record.state == "dead"

        await eventually(dead, description="dead-lettered")
        record = await q.get_job(job.id)
        assert record is not None
        assert "result is not JSON serializable" in (record.error or "")
        assert record.attempts == 1  # not retried: the same code returns the same result
        # ...and its slot was given back (a task that ended without it leaked it for good;
        # the fetch loop holds slots only for the length of a call).
        slots = worker.consumers["unstorable"].slots

        async def free() -> bool:
            return slots.used == 0

        await eventually(free, description="every slot given back")


class Recording:
    def __init__(self, log: list[str], name: str, *, fail: bool = False) -> None:
        self.log, self.name, self.fail = log, name, fail

    async def start(self, worker: Worker) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self, worker: Worker) -> None:
        self.log.append(f"stop {self.name}")


async def test_an_extension_that_cannot_start_fails_the_worker_before_any_job(
    redis_url: str,
) -> None:
    log: list[str] = []
    extensions = [Recording(log, "a"), Recording(log, "b"), Recording(log, "c", fail=True)]
    worker = Worker(settings=fast_settings(redis_url), extensions=list(extensions))
    ran: list[str] = []

    @worker.processor("never")
    async def handle(job: Job[Any]) -> None:
        ran.append(job.id)

    async with Queue("never", redis_url=redis_url) as q:
        await q.enqueue_many([{"n": 1}])
        with pytest.raises(RuntimeError, match="c cannot start"):
            await worker.start()
        assert log == ["start a", "start b", "stop b", "stop a"]
        assert (await q.counts())["waiting"] == 1
    assert ran == []


request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class ContextSeen(WorkerObserver):
    def __init__(self) -> None:
        self.per_job: dict[str, str | None] = {}
        self.in_batches: list[str | None] = []

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        self.per_job[job.id] = request_id.get()

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        self.in_batches.extend(request_id.get() for _ in completions)


async def test_completion_hooks_see_their_own_jobs_context(redis_url: str) -> None:
    seen = ContextSeen()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])

    @worker.processor("contexts", concurrency=8)
    async def handle(job: Job[Any]) -> None:
        request_id.set(f"req-{job.data['n']}")  # what a processor binding log fields does

    async with running(worker), Queue("contexts", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([{"n": i} for i in range(20)])

        async def all_seen() -> bool:
            return len(seen.per_job) == 20 and len(seen.in_batches) == 20

        await eventually(all_seen, description="20 completions, per job and in batches")
    assert seen.per_job == {j.id: f"req-{i}" for i, j in enumerate(jobs)}
    assert seen.in_batches == [None] * 20  # batches run in no job's context, not the first's
