"""Leases under faults: a Redis freeze is not a dead worker, and a stale run changes nothing.

The faults are real: Redis frozen by `DEBUG SLEEP` or SIGSTOP/SIGCONT of its process, a
worker's event loop blocked by a processor that calls `time.sleep`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as sync_redis

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.processes import start_worker
from worker_runtime import Job, Queue, QueueConfig, Worker
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.core.keys import QueueKeys
from worker_runtime.redis_io.connection import connect, ensure_ready
from worker_runtime.redis_io.scripts import Scripts, script_source

pytestmark = pytest.mark.integration


def reclaim_call(q: Queue, client: Any = None) -> Any:
    """One pass of reclaim.lua, as any worker's reclaim loop makes it."""
    k = q.keys
    keys = [k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix]
    return q.scripts.reclaim(keys=keys, args=[3, 1000, 1, 0], client=client)


def prepared_reclaim(url: str, q: Queue, *, timeout: float) -> Callable[[], Callable[[], Any]]:
    """A reclaim to send later as one plain blocking write on a connection made now, so that
    a stopped Redis runs it first when it resumes. ``send()`` returns the call that reads its
    reply."""
    client = sync_redis.Redis.from_url(url, decode_responses=True, socket_timeout=timeout)
    sha = client.script_load(script_source("reclaim"))
    conn = client.connection_pool.get_connection()
    k = q.keys
    keys = [k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix]

    def send() -> Callable[[], Any]:
        conn.send_command("EVALSHA", sha, len(keys), *keys, 3, 1000, 1, 0)
        return reply

    def reply() -> Any:
        try:
            return conn.read_response()
        finally:
            conn.disconnect()
            client.close()

    return send


async def debug_sleep_then_reclaim(q: Queue, client: Any, seconds: float) -> Any:
    """DEBUG SLEEP and a reclaim pipelined on one connection: Redis runs the reclaim right
    after the freeze, before any other client's command (a worker's renewal included)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.execute_command("DEBUG", "SLEEP", seconds)
        await reclaim_call(q, client=pipe)  # queued on the pipeline
        _, reclaimed = await pipe.execute()
    return reclaimed


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own that accepts DEBUG (SLEEP) from loopback clients."""
    with RedisServer(extra_args=["--enable-debug-command", "local"]) as server:
        yield server


async def leases_of(q: Queue, pid: int) -> list[str]:
    """Active jobs leased by the worker process ``pid`` (lease tokens begin with its id)."""
    active = await q.redis.zrange(q.keys.active, 0, -1)
    holders = [await q.redis.hget(q.keys.job(job_id), "lk") for job_id in active]
    return [j for j, lk in zip(active, holders, strict=True) if lk and f"-{pid}-" in lk]


@pytest.mark.parametrize("fault", ["debug-sleep-5s", "sigstop-15s-one-worker-killed"])
async def test_redis_freeze_reruns_no_live_workers_job_and_counts_no_stall(
    own_redis: RedisServer, fault: str
) -> None:
    """10 running jobs on 2 workers, 5 each (production lease, 3 s); Redis freezes for longer
    than the lease; the first script Redis runs afterwards is a reclaim (as a third worker's
    would be). No job of a live worker may run twice or count a stall. In the second case
    one worker is SIGKILLed during the freeze: its jobs (only those) are reclaimed within 5 s
    of Redis resuming, and count one stall each."""
    url = own_redis.url
    freeze = float(re.search(r"(\d+)s", fault).group(1))  # type: ignore[union-attr]
    kill_one = fault.endswith("killed")
    n = 10
    # The test's own calls wait out the freeze (a worker's time out after 30 s and retry).
    patient = connect(url, socket_timeout=freeze + 30)
    async with Queue("rec", redis_url=url) as q:
        # Each job outlives the freeze by a few seconds: its owner renews after it.
        await q.enqueue_many([{"ms": int((freeze + 3) * 1000)}] * n)
        # The first worker takes 5 (its cap), the second the other 5.
        first = start_worker(url, WORKER_LEASE_MS="3000", WORKER_MAX_JOBS_PER_WORKER="5")
        workers = [first]
        try:

            async def first_holds_5() -> bool:
                return len(await leases_of(q, first.pid)) == 5

            await eventually(first_holds_5, timeout=60, description="first worker's jobs")
            workers.append(start_worker(url, WORKER_LEASE_MS="3000"))

            async def all_started() -> bool:
                return len(await q.redis.hgetall("test:started")) == n

            await eventually(all_started, timeout=60, description="all jobs running")
            orphans = await leases_of(q, first.pid) if kill_one else []
            if fault.startswith("debug"):
                reclaimed = await debug_sleep_then_reclaim(q, patient, freeze)
                resumed = time.monotonic()
            else:
                assert own_redis.proc is not None
                send = prepared_reclaim(url, q, timeout=freeze + 30)
                os.kill(own_redis.proc.pid, signal.SIGSTOP)
                try:
                    pending = send()
                    if kill_one:
                        first.kill()  # dies during the freeze: nobody renews its leases
                        first.wait(timeout=10)
                    await asyncio.sleep(freeze)  # the fault's length, not a synchronisation
                finally:
                    os.kill(own_redis.proc.pid, signal.SIGCONT)
                resumed = time.monotonic()
                reclaimed = await asyncio.to_thread(pending)

            async def orphans_back() -> bool:
                return not set(orphans) & set(await leases_of(q, first.pid))

            await eventually(orphans_back, timeout=20, description="dead worker's jobs back")
            reclaim_seconds = time.monotonic() - resumed
            live = [j for j in (await q.redis.hgetall("test:started")) if j not in orphans]

            async def live_done() -> bool:
                done = await q.redis.hmget("test:exec", live)
                return all(done)

            await eventually(live_done, timeout=freeze + 40, description="live jobs completed")
            started = await q.redis.hgetall("test:started")
            executed = await q.redis.hgetall("test:exec")
            stats = await q.redis.hgetall(q.keys.stats)
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.kill()
            await patient.aclose()
    assert reclaimed == [[], []], "a frozen Redis made live workers' jobs look stalled"
    assert len(live) == n - len(orphans)
    assert [int(started[j]) for j in live] == [1] * len(live), f"runs per job: {started}"
    assert [int(executed[j]) for j in live] == [1] * len(live)
    assert int(stats.get("stalled", 0)) == len(orphans)
    if kill_one:
        assert len(orphans) == 5
    assert reclaim_seconds < 5, f"dead worker's jobs reclaimed {reclaim_seconds:.1f}s late"


class LeaseEvents(WorkerObserver):
    def __init__(self) -> None:
        self.lost: list[tuple[str, str]] = []

    def job_lease_lost(self, job: Job[Any]) -> None:
        self.lost.append(job.lease)


def reclaim_in_another_thread(url: str, queue: str, stop: threading.Event) -> threading.Thread:
    """Another worker's reclaim loop (its own thread and event loop), which keeps scanning
    while this test's event loop is blocked."""

    async def loop() -> None:
        client = connect(url)
        await ensure_ready(client)
        scripts = Scripts(client)
        k = QueueKeys(queue)
        keys = [k.active, k.wait, k.dead, k.failed, k.stats, k.marker, k.job_prefix]
        while not stop.is_set():
            await scripts.reclaim(keys=keys, args=[3, 1000, 1, 0])
            await asyncio.sleep(0.1)
        await client.aclose()

    thread = threading.Thread(target=asyncio.run, args=(loop(),), daemon=True)
    thread.start()
    return thread


async def test_worker_whose_loop_stalls_past_its_lease_runs_no_stale_lease(
    redis_url: str,
) -> None:
    """The processor blocks the event loop (time.sleep) longer than the lease; meanwhile
    another worker reclaims the job and this worker fetches it again. The stale first run
    must not be acknowledged (the job's result is the second run's), and every slot is
    given back once (Slots.used returns to 0)."""
    events = LeaseEvents()
    worker = Worker(settings=fast_settings(redis_url), concurrency=2, observers=[events])
    runs = 0

    @worker.processor("stl", config=QueueConfig(max_stalls=3))
    async def handle(job: Job[Any]) -> str:
        nonlocal runs
        runs += 1
        run = runs
        if run == 1:
            time.sleep(2.5)  # noqa: ASYNC251  (the fault: no renewal for 2.5 s, lease 1 s)
            await asyncio.sleep(0.5)
        else:
            await asyncio.sleep(1.0)
        return f"run {run}"

    stop = threading.Event()
    async with Queue("stl", redis_url=redis_url) as q:
        job = await q.enqueue({})
        thread = reclaim_in_another_thread(redis_url, "stl", stop)
        try:
            async with running(worker):
                consumer = worker.consumers["stl"]

                async def settled() -> bool:
                    rec = await q.get_job(job.id)
                    done = rec is not None and rec.state == "completed"
                    return done and not consumer.running and runs >= 2

                await eventually(settled, timeout=20, description="job completed, worker idle")
                # Let the first run's late acknowledgement (if any) reach Redis.
                await eventually(
                    lambda: _no_acks_pending(consumer), timeout=5, description="acks flushed"
                )
                used = consumer.slots.used
                rec = await q.get_job(job.id)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert rec is not None
    assert rec.result == "run 2", "the stale run's acknowledgement was accepted"
    assert used == 0, f"{used} slot(s) leaked"
    assert rec.stalls == 1  # the loop stalled past the lease while another worker was alive
    assert len(events.lost) == 1
    assert events.lost[0][0] == job.id


async def _no_acks_pending(consumer: Any) -> bool:
    return not consumer._acks and consumer._ack_task is None


async def test_a_retried_fetch_gets_the_jobs_its_first_call_leased(redis_url: str) -> None:
    """A fetch whose reply was lost (a timeout, a dropped connection) is sent again with the
    same token (redis-py's retry or the consumer's): it must not lease a second batch and
    leave the first to stall."""
    async with Queue("rf", redis_url=redis_url) as q:
        await q.enqueue_many([{"i": i} for i in range(4)])
        k = q.keys
        keys = [k.wait, k.active, k.delayed, k.marker, k.job_prefix]
        first = await q.scripts.fetch(keys=keys, args=[5000, 2, "w:1"])
        again = await q.scripts.fetch(keys=keys, args=[5000, 2, "w:1"])
        counts = await q.counts()
    assert first[1::4] == again[1::4]
    assert len(first[1::4]) == 2
    assert counts["active"] == 2
    assert counts["waiting"] == 2


async def test_reclaim_of_a_job_with_a_garbage_stall_count_loses_nothing(redis_url: str) -> None:
    async with Queue("gs", redis_url=redis_url) as q:
        job = await q.enqueue({})
        k = q.keys
        await q.scripts.fetch(
            keys=[k.wait, k.active, k.delayed, k.marker, k.job_prefix], args=[1, 1, "w:1"]
        )
        await q.redis.hset(k.job(job.id), mapping={"stl": "many", "hist": "not json"})

        async def reclaimed() -> Any:
            return (await reclaim_call(q))[1]

        assert await eventually(reclaimed, timeout=5, description="lease lapsed") == [job.id]
        (rec,) = await q.dead_letters()
    assert rec.error is not None
    assert "corrupt job hash" in rec.error
    assert "many" in rec.error


async def test_a_job_key_of_the_wrong_type_does_not_stop_the_other_renewals(
    redis_url: str,
) -> None:
    """Something overwrote one running job's hash with a string: its lease is reported lost
    (the run stops), and the worker's other leases are still renewed (no stall, one run)."""
    release = asyncio.Event()
    started: list[str] = []
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("wt", config=QueueConfig(concurrency=2))
    async def handle(job: Job[Any]) -> None:
        started.append(job.id)
        await release.wait()

    async with Queue("wt", redis_url=redis_url) as q, running(worker):
        broken, healthy = await q.enqueue_many([{}, {}])

        async def both_running() -> bool:
            return len(started) == 2

        await eventually(both_running, timeout=5, description="both running")
        await q.redis.delete(q.keys.job(broken.id))
        await q.redis.set(q.keys.job(broken.id), "not a hash")

        async def broken_run_stopped() -> bool:
            return worker.active == 1

        await eventually(broken_run_stopped, timeout=5, description="the broken run stopped")
        # Three lease lengths: the healthy job would have been reclaimed without renewals.
        await asyncio.sleep(3)
        release.set()

        async def healthy_completed() -> bool:
            rec = await q.get_job(healthy.id)
            return rec is not None and rec.state == "completed"

        await eventually(healthy_completed, timeout=5, description="healthy job completed")
        rec = await q.get_job(healthy.id)

        # Its lease lapsed: reclaim sets the key aside and dead-letters the job with the reason,
        # and goes on reclaiming: a job whose worker died (a lapsed lease) runs again.
        fields = {"data": "{}", "att": 0, "stl": 0, "state": "active", "lk": "ghost"}
        await q.redis.hset(q.keys.job("orphan"), mapping=fields)
        await q.redis.zadd(q.keys.active, {"orphan": 0})

        async def both_settled() -> bool:
            return "orphan" in started and (await q.counts())["dead"] == 1

        await eventually(both_settled, timeout=10, description="broken dead, orphan ran")
        (dead,) = await q.dead_letters()
    assert dead.id == broken.id
    assert dead.error == "malformed job: job key is a string, not a hash"
    assert rec is not None
    assert rec.stalls == 0
    assert started.count(healthy.id) == 1
