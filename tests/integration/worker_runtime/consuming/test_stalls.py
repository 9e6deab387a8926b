"""At-least-once delivery when a worker process dies mid-run (SIGKILL), and stall limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.processes import sigterm_and_wait, start_worker
from worker_runtime import Job, Queue, QueueConfig, Worker
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration


async def test_sigkilled_workers_jobs_run_again_within_5s(redis_url: str) -> None:
    client = connect(redis_url)
    async with Queue("rec", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([{"ms": 300}] * 300)
        victim = start_worker(redis_url)
        survivor = start_worker(redis_url)
        try:

            async def both_busy() -> list[str]:
                held = await _leases_of(q, victim.pid)
                return held if len(held) >= 10 and len(await _leases_of(q, survivor.pid)) else []

            await eventually(both_busy, timeout=20, description="both workers running jobs")
            victim.kill()  # SIGKILL: no drain, no release
            victim.wait(timeout=5)
            killed_at = time.monotonic()
            orphans = await _leases_of(q, victim.pid)
            assert orphans, "the victim held leases when it died"

            async def orphans_rerun() -> bool:
                executed = await client.hgetall("test:exec")
                return all(executed.get(job_id) for job_id in orphans)

            await eventually(orphans_rerun, timeout=20, description="orphans executed")
            rerun_after = time.monotonic() - killed_at

            async def all_done() -> bool:
                return (await q.counts())["completed"] == 300

            await eventually(all_done, timeout=30, description="all 300 completed")
            assert sigterm_and_wait(survivor) == 0
            executed = await client.hgetall("test:exec")
            stats = await q.redis.hgetall(q.keys.stats)
            counts = await q.counts()
        finally:
            for proc in (victim, survivor):
                if proc.poll() is None:
                    proc.kill()
    await client.aclose()
    # Lease 1.5 s + reclaim scan 0.5 s + the job's own 0.3 s bound this; the target is 5 s.
    assert rerun_after < 5, f"orphaned jobs ran again only after {rerun_after:.1f}s"
    assert set(executed) == {j.id for j in jobs}  # none lost
    assert all(int(n) >= 1 for n in executed.values())  # every job at least once
    assert int(stats["stalled"]) >= len(orphans)
    assert counts["dead"] == 0


async def _leases_of(q: Queue, pid: int) -> list[str]:
    """Active jobs leased by the worker process ``pid`` (worker ids embed the pid)."""
    active = await q.redis.zrange(q.keys.active, 0, -1)
    holders = [await q.redis.hget(q.keys.job(job_id), "lk") for job_id in active]
    return [j for j, lk in zip(active, holders, strict=True) if lk and f"-{pid}-" in lk]


async def test_reclaim_within_lease_plus_scan_in_process(redis_url: str) -> None:
    """A lease nobody renews (worker frozen) is reclaimed and counted as a stall."""
    async with Queue("st", redis_url=redis_url) as q:
        job = await q.enqueue({})
        k = q.keys
        await q.scripts.fetch(
            keys=[k.wait, k.active, k.delayed, k.marker, k.job_prefix], args=[500, 1, "dead-worker"]
        )
        ran: list[int] = []
        worker = Worker(settings=fast_settings(redis_url))

        @worker.processor("st", config=QueueConfig(max_stalls=1))
        async def handle(j: Job[Any]) -> None:
            ran.append(j.stalls)

        async with running(worker):

            async def done() -> bool:
                return (await q.counts())["completed"] == 1

            await eventually(done, timeout=5, description="reclaimed job completed")
        rec = await q.get_job(job.id)
    assert ran == [1]
    assert rec is not None
    assert rec.stalls == 1
    assert rec.attempts == 1  # a stall is not an attempt


async def test_job_stalling_more_than_max_stalls_fails_to_dead_letter(redis_url: str) -> None:
    async with Queue("st", redis_url=redis_url) as q:
        job = await q.enqueue({"n": 1})
        k = q.keys
        fetch_keys = [k.wait, k.active, k.delayed, k.marker, k.job_prefix]
        reclaim_keys = [k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix]
        for _ in range(2):  # lease and abandon twice; max_stalls=1 tolerates only one
            await q.scripts.fetch(keys=fetch_keys, args=[1, 1, "w"])
            await asyncio.sleep(0.01)  # let the 1 ms lease lapse on Redis' clock
            requeued, failed = await q.scripts.reclaim(keys=reclaim_keys, args=[1, 100, 1])
        assert (requeued, failed) == ([], [job.id])
        (rec,) = await q.dead_letters()
    assert rec.stalls == 2
    assert rec.error is not None
    assert "stalled 2 times" in rec.error
    assert rec.history[-1].stalled
