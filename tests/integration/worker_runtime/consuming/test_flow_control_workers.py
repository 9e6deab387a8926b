"""Flow control with three worker processes on one real Redis: a queue-wide rate limit holds
within 10 % over 10 s while per-tenant limits hold per tenant without slowing other tenants
(both measured in the same window), a cron job fires once per tick, delayed jobs start on
time, priorities order the leases, cancellation reaches a running job in another process, and
a flow of a parent and 100 children completes.

The workers are started once for the module (subprocesses take a second or two each).
Standalone Redis only: the same scripts run on a Redis Cluster in the in-process suites.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import max_in_window
from tests.integration.worker_runtime.flow_apps import TENANT_LIMIT
from worker_runtime import JobSpec, JobState, Queue
from worker_runtime.consuming.cron import cron_job_id

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
APP = "tests.integration.worker_runtime.flow_apps:app"
WORKERS = 3
#: Queue-wide limit of the ``limited`` queue, given as WORKER_RATE_LIMIT.
RATE = 40


@pytest.fixture(scope="module")
def workers(redis_server: RedisServer) -> Iterator[str]:
    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "PYTHONPATH": str(REPO),
        "WORKER_LEASE_MS": "1500",
        "WORKER_RATE_LIMIT": f'{{"max": {RATE}, "perSeconds": 1}}',
        "ENABLE_HEALTH_CHECKS": "false",
        "METRICS_ENABLED": "false",
        "STATUS_STORE_ENABLED": "false",
        "LOG_LEVEL": "warning",
    }
    with tempfile.TemporaryDirectory() as logs:
        procs = []
        for i in range(WORKERS):
            out = Path(logs, f"worker-{i}.log").open("wb")  # noqa: SIM115 (closed below)
            cmd = [sys.executable, "-m", "shoal", "worker", APP]
            procs.append((subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out), out))
        try:
            yield redis_server.url
        finally:
            for proc, _ in procs:
                proc.send_signal(signal.SIGTERM)
            for proc, out in procs:
                try:
                    proc.wait(timeout=30)
                finally:
                    out.close()
            for i, (proc, _) in enumerate(procs):
                assert proc.returncode == 0, Path(logs, f"worker-{i}.log").read_text()[-3000:]


@pytest.fixture
async def queue(workers: str) -> AsyncIterator[Any]:
    made: list[Queue] = []

    def make(name: str) -> Queue:
        made.append(Queue(name, redis_url=workers))
        return made[-1]

    yield make
    for q in made:
        await q.close()


async def _starts(q: Queue, ids: list[str]) -> dict[str, int]:
    """Lease time (Redis' clock, ms) of each job that started."""
    async with q.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(q.keys.job(job_id), "st")
        values = await pipe.execute()
    return {job_id: int(v) for job_id, v in zip(ids, values, strict=True) if v}


async def test_global_and_per_tenant_limits_hold_in_the_same_window(queue: Any) -> None:
    limited, tenants = queue("limited"), queue("tenants")
    # Tenant a's backlog is ahead of b's jobs and the untenanted ones in the same list.
    a = await tenants.enqueue_many([JobSpec({"tenant": "a", "i": i}) for i in range(48)])
    b = await tenants.enqueue_many([JobSpec({"tenant": "b", "i": i}) for i in range(6)])
    free = await tenants.enqueue_many([JobSpec({"i": i}) for i in range(30)])
    lim = await limited.enqueue_many([{"i": i} for i in range(RATE * 14)])
    lim_ids = [j.id for j in lim]

    async def limited_ran_for_11s() -> bool:
        st = await _starts(limited, lim_ids)
        return bool(st) and max(st.values()) - min(st.values()) >= 11_000

    await eventually(limited_ran_for_11s, timeout=20, interval=0.25, description="11 s of starts")
    starts = sorted((await _starts(limited, lim_ids)).values())
    first = starts[0]
    steady = [t for t in starts if first + 1000 <= t < first + 11_000]
    assert abs(len(steady) - RATE * 10) <= RATE * 10 * 0.10, f"{len(steady)} starts in 10 s"
    from_first = [t for t in starts if t < first + 10_000]
    assert len(from_first) <= RATE * 10 * 1.10, f"{len(from_first)} starts in the first 10 s"
    # The limit itself is exact: never more than RATE starts in any 1 s window.
    assert max_in_window(starts, 1000) == RATE

    a_starts = await _starts(tenants, [j.id for j in a])
    b_starts = await _starts(tenants, [j.id for j in b])
    free_starts = await _starts(tenants, [j.id for j in free])
    t0 = min(a_starts.values())
    # Per tenant: never more than TENANT_LIMIT in any 1 s window, and that many a second.
    assert max_in_window(list(a_starts.values()), 1000) == TENANT_LIMIT
    a_in_10s = [t for t in a_starts.values() if t0 + 1000 <= t < t0 + 11_000]
    assert abs(len(a_in_10s) - TENANT_LIMIT * 10) <= TENANT_LIMIT * 10 * 0.10 + 1
    # Other tenants are not held up by a's backlog: b's first TENANT_LIMIT and every job
    # without a tenant start at once; b's remaining ones in b's next window.
    assert len(free_starts) == 30
    assert max(free_starts.values()) - t0 < 500
    assert sorted(b_starts.values())[TENANT_LIMIT - 1] - t0 < 500
    assert len(b_starts) == 6
    assert max(b_starts.values()) - t0 < 2000
    counts = await tenants.counts()
    assert counts["waiting"] == 48 - len(a_starts)  # parked jobs count as waiting


async def test_cron_fires_exactly_once_per_tick(queue: Any) -> None:
    ticks = queue("ticks")
    # Every worker runs the schedule; ticks are the ids of the jobs they enqueued.
    await eventually(
        lambda: _count_at_least(ticks, 4), timeout=10, description="four ticks enqueued"
    )
    ids = sorted(await ticks.redis.zrange(ticks.keys.completed, 0, -1))
    tick_numbers = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in ids)
    assert tick_numbers == list(range(tick_numbers[0], tick_numbers[0] + len(tick_numbers)))
    assert ids[0] == cron_job_id("every-second", tick_numbers[0])
    stats = await ticks.redis.hgetall(ticks.keys.stats)
    ran = await ticks.redis.hgetall("test:ticks")
    assert all(v == "1" for v in ran.values())
    assert int(stats["enqueued"]) <= len(ids) + 1  # the newest tick may still be running


async def _count_at_least(q: Queue, n: int) -> bool:
    return int(await q.redis.zcard(q.keys.completed)) >= n


async def test_cancel_a_job_running_in_another_process(queue: Any) -> None:
    q = queue("sleepy")
    job = await q.enqueue({"ms": 20_000})

    async def started() -> bool:
        return bool(await q.redis.hget("test:started", job.id))

    await eventually(started, timeout=10, description="the job running")
    assert await q.cancel(job.id, reason="user asked")
    rec = await q.wait_for(job.id, timeout=1)
    assert rec.state is JobState.CANCELLED
    assert rec.error == "user asked"

    async def task_cancelled() -> bool:
        return bool(await q.redis.hget("test:cancelled", job.id))

    # The worker learns it at its next lease renewal (a third of the 1.5 s lease).
    await eventually(task_cancelled, timeout=3, description="the worker cancelled the task")
    assert not await q.redis.hget("test:exec", job.id)
    counts = await q.counts()
    assert (counts["active"], counts["cancelled"], counts["failed"]) == (0, 1, 0)
    assert not await q.cancel(job.id)  # already final


async def test_flow_of_a_parent_and_100_children(queue: Any) -> None:
    q = queue("flow")
    flow = await q.enqueue_flow({"parent": True}, [{"n": i} for i in range(100)])
    assert flow.added
    rec = await q.wait_for(flow.parent_id, timeout=15)
    assert rec.state is JobState.COMPLETED
    assert rec.result == {"sum": sum(range(100)), "children": 100, "failed": []}
    children = [await q.get_job(c) for c in flow.children_ids]
    assert all(c is not None and c.state is JobState.COMPLETED for c in children)
    # The parent started only after the last child finished.
    assert rec.started_at is not None
    assert rec.started_at >= max(c.finished_at or 0 for c in children if c)


async def test_delayed_jobs_start_on_time_across_processes(queue: Any) -> None:
    q = queue("later")
    delays = [0.2 + (i % 8) * 0.1 for i in range(40)]
    jobs = await q.enqueue_many([JobSpec({"i": i}, delay_seconds=d) for i, d in enumerate(delays)])
    for job in jobs:
        await q.wait_for(job.id, timeout=5)
    records = [await q.get_job(j.id) for j in jobs]
    late = sorted(r.started_at - r.due_at for r in records if r and r.started_at and r.due_at)
    assert len(late) == 40
    assert late[0] >= 0
    assert late[-1] < 100, f"start - due, ms: {late}"


async def test_priorities_order_the_leases_across_processes(queue: Any) -> None:
    q = queue("ordered")
    # One enqueue call: every job is there before any worker looks (2 slots a worker).
    plan = [(i, [0, 7, -2, 3, 7, 0][i % 6]) for i in range(60)]
    jobs = await q.enqueue_many([JobSpec({"i": i}, priority=p) for i, p in plan])
    for job in jobs:
        await q.wait_for(job.id, timeout=10)
    starts = await _starts(q, [j.id for j in jobs])
    by_priority: dict[int, list[int]] = {}
    for (_, priority), job in zip(plan, jobs, strict=True):
        by_priority.setdefault(priority, []).append(starts[job.id])
    levels = sorted(by_priority, reverse=True)
    # Fetches are serialised in Redis: a higher priority's last lease is never after a lower
    # one's first, and within a priority leases follow enqueue order.
    for higher, lower in itertools.pairwise(levels):
        assert max(by_priority[higher]) <= min(by_priority[lower]), (higher, lower)
    for times in by_priority.values():
        assert times == sorted(times)
