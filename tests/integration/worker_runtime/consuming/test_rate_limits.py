"""Rate limits in process, on standalone Redis and on a Redis Cluster (one slot per queue):
exact sliding windows, parked groups, and what counts and snapshots report meanwhile.
(The ±10 % over 10 s acceptance run with three worker processes is in
test_flow_control_workers.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, max_in_window, running
from worker_runtime import Job, JobSpec, Queue, QueueConfig, Worker
from worker_runtime.producing.queue_snapshot import snapshot_queues
from worker_runtime.rate_limit import GroupRateLimit, RateLimit

pytestmark = pytest.mark.integration


async def _starts(q: Queue, ids: list[str]) -> list[int]:
    records = [await q.get_job(i) for i in ids]
    return [r.started_at for r in records if r and r.started_at]


async def test_two_workers_share_the_queue_limit_and_group_limits(redis_url: str) -> None:
    config = QueueConfig(
        rate_limit=RateLimit(max=6, per_seconds=0.5),
        group_rate_limit=GroupRateLimit(key="user", max=2, per_seconds=0.5),
    )
    workers = [Worker(settings=fast_settings(redis_url)) for _ in range(2)]
    for w in workers:

        @w.processor("rl", config=config)
        async def handle(job: Job[Any]) -> None:
            pass

    async with Queue("rl", redis_url=redis_url) as q:
        a = await q.enqueue_many([JobSpec({"user": "a", "i": i}) for i in range(6)])
        rest = await q.enqueue_many([JobSpec({"user": "b"}), *[JobSpec({}) for _ in range(10)]])
        snap = (await snapshot_queues(q.redis, ["rl"]))["rl"]
        assert snap.waiting == 17
        for w in workers:
            await w.start()
        try:

            async def all_started() -> bool:
                return len(await _starts(q, [j.id for j in a + rest])) == 17

            await eventually(all_started, timeout=10, description="17 started")
        finally:
            for w in workers:
                await w.stop(grace_seconds=2)
        starts = await _starts(q, [j.id for j in a + rest])
        a_starts = await _starts(q, [j.id for j in a])
    assert max_in_window(starts, 500) == 6
    assert max_in_window(a_starts, 500) == 2
    # 17 starts at 6 per 0.5 s need three windows; a's six need three of its own.
    assert max(starts) - min(starts) >= 1000
    assert max(a_starts) - min(a_starts) >= 1000


async def test_parked_and_prioritized_jobs_count_as_waiting(redis_url: str) -> None:
    async with Queue("rlc", redis_url=redis_url) as q:
        await q.enqueue_many([JobSpec({"t": "x"}) for _ in range(3)])
        await q.enqueue({"p": 1}, priority=2)
        k = q.keys
        fetch_keys = [
            k.wait, k.active, k.delayed, k.marker, k.job_prefix, k.prioritized, k.stats, k.rate,
            k.group_rate_prefix, k.group_parked_prefix, k.limited_groups,
        ]  # fmt: skip
        # Lease everything allowed: the prioritized job and one of group x; two are parked.
        reply = await q.scripts.fetch(keys=fetch_keys, args=[5000, 10, "w", 0, 1000, "t", 1, 60000])
        assert (len(reply) - 1) // 4 == 2
        assert 59_000 < int(reply[0]) <= 60_000  # look again when x's window opens
        counts = await q.counts()
        snap = (await snapshot_queues(q.redis, ["rlc"]))["rlc"]
    assert (counts["waiting"], counts["active"]) == (2, 2)
    assert snap.waiting == 2
    assert snap.backlog == 2


async def test_jobs_parked_under_a_removed_group_limit_still_run(redis_url: str) -> None:
    ran: list[int] = []
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("rlx")  # deployed again without the group limit
    async def handle(job: Job[Any]) -> None:
        ran.append(job.data["i"])

    async with Queue("rlx", redis_url=redis_url) as q:
        await q.enqueue_many([JobSpec({"t": "x", "i": i}) for i in range(5)])
        k = q.keys
        fetch_keys = [
            k.wait, k.active, k.delayed, k.marker, k.job_prefix, k.prioritized, k.stats, k.rate,
            k.group_rate_prefix, k.group_parked_prefix, k.limited_groups,
        ]  # fmt: skip
        # An old worker with a limit of one an hour took job 0 and parked the rest.
        reply = await q.scripts.fetch(
            keys=fetch_keys, args=[60000, 10, "old", 0, 1000, "t", 1, 3_600_000]
        )
        assert (len(reply) - 1) // 4 == 1
        assert (await q.counts())["waiting"] == 4
        async with running(worker):
            await eventually(lambda: _ran_all(ran, 4), timeout=5, description="parked jobs ran")
        assert sorted(ran) == [1, 2, 3, 4]
        assert (await q.counts())["waiting"] == 0
        assert not await q.redis.exists(k.limited_groups)


async def _ran_all(ran: list[int], n: int) -> bool:
    return len(ran) >= n
