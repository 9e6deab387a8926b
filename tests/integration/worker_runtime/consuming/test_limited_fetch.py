"""What a rate-limited fetch costs Redis: an idle limited worker does not spin, a big batch
fits, and group limits do not decode a backlog of large payloads in one call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobSpec, Queue, QueueConfig, Worker
from worker_runtime.core.keys import QueueKeys
from worker_runtime.rate_limit import GroupRateLimit, RateLimit

pytestmark = pytest.mark.integration


async def script_calls(client: Any) -> int:
    """Script calls Redis has run (every primary of a cluster), from INFO commandstats."""
    if isinstance(client, RedisCluster):
        per_node = await client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        infos = list(per_node.values())
    else:
        infos = [await client.info("commandstats")]
    return sum(
        info.get(f"cmdstat_{cmd}", {}).get("calls", 0)
        for info in infos
        for cmd in ("evalsha", "eval")
    )


def fetch_keys(k: QueueKeys) -> list[str]:
    return [
        k.wait, k.active, k.delayed, k.marker, k.job_prefix, k.prioritized, k.stats, k.rate,
        k.group_rate_prefix, k.group_parked_prefix, k.limited_groups,
    ]  # fmt: skip


async def test_an_idle_limited_worker_does_not_spin(redis_url: str) -> None:
    """The queue-wide window is full and a parked group's window opened: nothing can start
    until the queue-wide window opens, so the worker waits for that, not 0 ms."""
    config = QueueConfig(
        rate_limit=RateLimit(max=3, per_seconds=5),
        group_rate_limit=GroupRateLimit(key="t", max=1, per_seconds=0.2),
    )
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("spin", config=config)
    async def handle(job: Job[Any]) -> None:
        pass

    async with Queue("spin", redis_url=redis_url) as q:
        await q.enqueue_many([JobSpec({"t": "a", "i": i}) for i in range(10)])
        async with running(worker):

            async def window_full() -> bool:
                return (await q.counts())["completed"] == 3

            await eventually(window_full, timeout=10, description="3 jobs ran")
            # The 5 s window holds the queue back for over 4 s more; group a reopens after
            # 0.2 s. Measure the idle worker's script calls over 2 s of that.
            before = await script_calls(q.redis)
            await asyncio.sleep(2.0)  # the measurement interval, not a synchronisation
            calls = await script_calls(q.redis) - before
            print(f"idle limited worker: {calls / 2.0:.1f} script calls/s")
            counts = await q.counts()
    assert counts["completed"] == 3
    # The worker's reclaim scan runs once a second; its fetches add one or two.
    assert calls / 2.0 <= 5, f"{calls / 2.0:.0f} script calls per second while idle"


async def test_a_limited_fetch_of_more_than_4000_jobs(redis_url: str) -> None:
    """Lua's unpack takes ~8,000 values: a batch of 5,000 recorded in the rate window (two
    values per start) and taken from the prioritized set must not hit it."""
    async with Queue("big", redis_url=redis_url) as q:
        specs = [JobSpec({"i": i}, priority=1 if i % 2 else 0) for i in range(5000)]
        await q.enqueue_many(specs)
        args = [60_000, 5000, "w", 10_000, 1000, "", 0, 1000]
        reply = await q.scripts.fetch(keys=fetch_keys(q.keys), args=args)
        counts = await q.counts()
        window = await q.redis.zcard(q.keys.rate)
    assert (len(reply) - 1) // 4 == 5000
    assert counts["active"] == 5000
    assert counts["waiting"] == 0
    assert window == 5000


async def test_group_limited_fetch_decodes_a_bounded_amount_of_payload(redis_url: str) -> None:
    """Finding a job's group reads and decodes its payload inside Redis: one call stops once
    it has read and decoded 4 MiB, the rest stays waiting in order for the next call."""
    blob = "x" * 60_000
    async with Queue("decode", redis_url=redis_url) as q:
        jobs = await q.enqueue_many([JobSpec({"t": str(i), "blob": blob}) for i in range(40)])
        ids = [j.id for j in jobs]
        args = [60_000, 100, "w", 0, 1000, "t", 5, 1000]
        first = await q.scripts.fetch(keys=fetch_keys(q.keys), args=args)
        waiting = await q.redis.lrange(q.keys.wait, 0, -1)
        args[2] = "w2"  # a new call, a new lease token (the same token would replay the first)
        second = await q.scripts.fetch(keys=fetch_keys(q.keys), args=args)
    # 35 payloads of 60 kB, read and decoded, make the first 4 MiB.
    assert first[1::4] == ids[:35]
    assert waiting == ids[35:]
    assert second[1::4] == ids[35:]


async def test_large_payloads_group_read_from_the_top_level_only(redis_url: str) -> None:
    """A payload over 64 KiB is not decoded: its top-level field is found by walking it. It
    gives the group a full decode gives (nested fields, escapes, duplicate keys, numbers)."""
    pad = "p" * 70_000
    cases: list[tuple[str, str | None]] = [
        ('{"t": "a", "blob": "PAD"}', "a"),
        ('{"blob": "PAD", "t":"b"}', "b"),
        ('{"x": {"t": "nested"}, "blob": "PAD", "t": "c"}', "c"),
        ('{"x": ["t", {"t": 1}], "s": "\\"t\\": 2", "blob": "PAD"}', None),
        ('{"t": "d\\u00e9\\"q", "blob": "PAD"}', 'dé"q'),
        ('{"\\u0074": 42, "blob": "PAD"}', "42"),
        ('{"t": "first", "t": "last", "blob": "PAD"}', "last"),
        ('{"t": {"deep": 1}, "blob": "PAD"}', None),
        ('{"t": null, "blob": "PAD"}', None),
        ('{"t": true , "blob": "PAD"}', "true"),
    ]
    async with Queue("walk", redis_url=redis_url) as q:
        k = q.keys
        for i, (template, _) in enumerate(cases):
            payload = template.replace("PAD", pad)
            for n in range(2):  # the first of each group starts, the second is parked
                jk = k.job(f"j{i}-{n}")
                await q.redis.hset(jk, mapping={"data": payload, "att": 0, "stl": 0})
                await q.redis.rpush(k.wait, f"j{i}-{n}")
        args = [60_000, 100, "w", 0, 1000, "t", 1, 60_000]
        for _ in range(5):
            await q.scripts.fetch(keys=fetch_keys(k), args=args)
        groups = [await q.redis.hget(k.job(f"j{i}-1"), "grp") for i in range(len(cases))]
        leased = await q.redis.zcard(k.active)
    # Groups "a".."c" and the rest by value; no group: both jobs of the case start.
    assert groups == [g for _, g in cases]
    assert leased == sum(2 if g is None else 1 for _, g in cases)
