"""Job events on the queue's bounded stream: follow them, wait for a job, `shoal events`."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from typing import Any

import pytest

from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.processes import REPO
from worker_runtime import Job, JobState, NonRetryableError, Queue, QueueConfig, Worker
from worker_runtime.producing.events import JobEvent, follow

pytestmark = pytest.mark.integration


def no_backoff(**extra: Any) -> QueueConfig:
    return QueueConfig.model_validate(
        {"retry": {"attempts": 2, "backoff": {"type": "fixed", "delay_seconds": 0}}, **extra}
    )


async def _collect(q: Queue, n: int, job_id: str | None = None) -> list[JobEvent]:
    got: list[JobEvent] = []
    async for event in follow(q, after="0-0", block_seconds=0.2):
        if job_id is None or event.job_id == job_id:
            got.append(event)
        if len(got) >= n:
            return got
    return got


async def test_events_of_a_job_in_order_and_wait_for(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("ev", config=no_backoff())
    async def handle(job: Job[Any]) -> dict[str, int]:
        await job.progress({"step": "start", "attempt": job.attempt})
        if job.data.get("boom") and job.attempt == 1:
            raise RuntimeError("first try fails")
        if job.data.get("never"):
            raise NonRetryableError("no")
        return {"attempt": job.attempt}

    async with Queue("ev", redis_url=redis_url) as q, running(worker):
        ok = await q.enqueue({"boom": True})
        rec = await q.wait_for(ok.id, timeout=5)
        assert (rec.state, rec.result) == (JobState.COMPLETED, {"attempt": 2})
        bad = await q.enqueue({"never": True})
        dead = await q.wait_for(bad.id, timeout=5)
        assert (dead.state, dead.error) == (JobState.DEAD, "no")
        events = await asyncio.wait_for(_collect(q, 4, ok.id), timeout=5)
        bad_events = await asyncio.wait_for(_collect(q, 2, bad.id), timeout=5)
    assert [e.event for e in events] == ["progress", "retried", "progress", "completed"]
    assert events[0].to_json()["progress"] == {"step": "start", "attempt": 1}
    assert events[1].fields["error"] == "first try fails"
    assert [e.event for e in bad_events] == ["progress", "dead"]
    assert all(a.at_ms <= b.at_ms for a, b in itertools.pairwise(events))


async def test_wait_for_times_out_and_names_unknown_jobs(redis_url: str) -> None:
    async with Queue("evw", redis_url=redis_url) as q:
        job = await q.enqueue({})
        with pytest.raises(TimeoutError, match="still waiting"):
            await q.wait_for(job.id, timeout=0.3)
        with pytest.raises(LookupError, match="nope"):
            await q.wait_for("nope", timeout=1)
        await q.cancel(job.id)
        assert (await q.wait_for(job.id, timeout=1)).state is JobState.CANCELLED


async def test_events_off_and_records_not_kept_still_wait(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("quiet", config=QueueConfig(events_max_len=0))
    async def quiet(job: Job[Any]) -> None:
        pass

    @worker.processor("fleeting", config=QueueConfig(keep_completed=0))
    async def fleeting(job: Job[Any]) -> int:
        await asyncio.sleep(0.2)
        return 1

    async with (
        Queue("quiet", redis_url=redis_url) as quiet_q,
        Queue("fleeting", redis_url=redis_url) as fleeting_q,
        running(worker),
    ):
        job = await quiet_q.enqueue({})
        assert (await quiet_q.wait_for(job.id, timeout=3)).state is JobState.COMPLETED
        assert not await quiet_q.redis.exists(quiet_q.keys.events)
        gone = await fleeting_q.enqueue({})
        rec = await fleeting_q.wait_for(gone.id, timeout=3)
        assert rec.state is JobState.COMPLETED  # from the event: the record was deleted
        assert await fleeting_q.get_job(gone.id) is None


async def test_the_stream_is_bounded(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("bounded", config=QueueConfig(events_max_len=20, retry={"attempts": 1}))
    async def handle(job: Job[Any]) -> None:
        raise NonRetryableError("x")  # one event per job (a completed batch is one entry)

    async with Queue("bounded", redis_url=redis_url) as q, running(worker):
        jobs = await q.enqueue_many([{} for _ in range(400)])
        await q.wait_for(jobs[-1].id, timeout=10)
        for job in jobs[-5:]:
            await q.wait_for(job.id, timeout=5)
        length = await q.redis.xlen(q.keys.events)
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): about, not exactly.
    assert 20 <= length <= 20 + 100


async def test_shoal_events_prints_json_lines(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("cli-ev")
    async def handle(job: Job[Any]) -> None:
        await job.progress(50)

    async with Queue("cli-ev", redis_url=redis_url) as q, running(worker):
        job = await q.enqueue({})
        await q.wait_for(job.id, timeout=5)
    cmd = [sys.executable, "-m", "shoal", "events", "cli-ev", "--from-start", "-n", "2"]
    out = await asyncio.to_thread(
        subprocess.run,
        [*cmd, "--job", job.id, "--redis-url", redis_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["event"], e["id"], e["queue"]) for e in lines] == [
        ("progress", job.id, "cli-ev"),
        ("completed", job.id, "cli-ev"),
    ]
    assert lines[0]["progress"] == 50
