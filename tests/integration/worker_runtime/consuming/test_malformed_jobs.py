"""Garbage in Redis (job hashes edited by hand, keys of the wrong type, bytes that are not
UTF-8, lone surrogates in error messages) and loops that crash: every good job still runs,
every bad one goes to the dead-letter store with its reason, the worker stays up and ready."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.observed import retrying
from worker_runtime import Job, Queue, Worker
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.consuming.undecodable import make_decodable
from worker_runtime.core.keys import QueueKeys
from worker_runtime.observing.health import readiness_problems
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration


class Seen(WorkerObserver):
    """What the worker reported about Redis and its loops."""

    def __init__(self) -> None:
        self.redis_errors: list[str] = []
        self.script_errors: list[str] = []
        self.crashes: list[str] = []

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.redis_errors.append(operation)

    def script_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.script_errors.append(operation)

    def loop_crashed(
        self, queue: str, *, loop: str, error: BaseException, restart_in: float
    ) -> None:
        self.crashes.append(loop)


def raw_client(redis_url: str) -> Any:
    """A client that sends and returns bytes as they are (to write bytes that are not UTF-8)."""
    client = connect(redis_url)
    kwargs = {"decode_responses": False}
    if isinstance(client, RedisCluster):
        return RedisCluster.from_url(redis_url.replace("+cluster://", "://", 1), **kwargs)
    return type(client).from_url(redis_url, **kwargs)


async def test_garbage_corpus_each_bad_job_dead_lettered_with_its_reason(redis_url: str) -> None:
    ran: list[str] = []
    worker = Worker(settings=fast_settings(redis_url, concurrency=4))

    @worker.processor("gc", config=retrying(1))
    async def handle(job: Job[Any]) -> None:
        if job.data.get("surrogate"):
            raise ValueError("bad byte \ud800 in the message")
        ran.append(job.id)

    raw = raw_client(redis_url)
    async with Queue("gc", redis_url=redis_url) as q:
        k: QueueKeys = q.keys
        good = [j.id for j in await q.enqueue_many([{"i": i} for i in range(40)])]
        bad = {}
        # Enqueued like any job, then corrupted in Redis as a hand edit or a bug would.
        for reason, (field, value) in {
            "field att is not a count": ("att", "x"),
            "field stl is not a count": ("stl", "1.5"),
            "payload is not UTF-8": ("data", b"\xff\xfe{"),
        }.items():
            job = await q.enqueue({"bad": reason})
            await raw.hset(k.job(job.id), field, value)
            bad[job.id] = reason
        for reason, field in {
            "field data is missing": "data",
            "field att is missing": "att",
        }.items():
            job = await q.enqueue({"bad": reason})
            await q.redis.hdel(k.job(job.id), field)
            bad[job.id] = reason
        job = await q.enqueue({"bad": "type"})
        await q.redis.delete(k.job(job.id))
        await q.redis.set(k.job(job.id), "not a hash")
        bad[job.id] = "job key is a string, not a hash"
        job = await q.enqueue({"bad": "json"})
        await q.redis.hset(k.job(job.id), "data", "{not json")
        bad[job.id] = "invalid payload"
        job = await q.enqueue({"surrogate": True})
        bad[job.id] = "bad byte \\ud800 in the message"
        # A delayed job whose priority is garbage still runs (as a plain job).
        delayed = await q.enqueue({"i": "late"}, delay_seconds=0.2, priority=3)
        await q.redis.hset(k.job(delayed.id), "pri", "nan")
        good.append(delayed.id)

        async with running(worker):

            async def all_settled() -> bool:
                counts = await q.counts()
                return counts["completed"] == len(good) and counts["dead"] == len(bad)

            await eventually(all_settled, timeout=30, description="good jobs done, bad dead")
            health = worker.health()
            assert health.ready, health
            assert health.healthy, health
        dead = {r.id: r for r in await q.dead_letters(limit=100)}
        counts = await q.counts()
    await raw.aclose()
    assert sorted(ran) == sorted(good)
    assert set(dead) == set(bad)
    for job_id, reason in bad.items():
        assert reason in (dead[job_id].error or ""), (reason, dead[job_id].error)
    # Nothing is lost: bytes that are not UTF-8 are kept, escaped.
    (not_utf8,) = [i for i, reason in bad.items() if reason == "payload is not UTF-8"]
    assert dead[not_utf8].data == "\\xff\\xfe{"
    assert counts["waiting"] == counts["active"] == 0


async def test_a_key_of_another_type_is_kept_aside(redis_url: str) -> None:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("gk")
    async def handle(job: Job[Any]) -> None:
        pass

    async with Queue("gk", redis_url=redis_url) as q:
        job = await q.enqueue({})
        await q.redis.delete(q.keys.job(job.id))
        await q.redis.rpush(q.keys.job(job.id), "someone's list")
        async with running(worker):

            async def dead() -> bool:
                return (await q.counts())["dead"] == 1

            await eventually(dead, timeout=10, description="dead-lettered")
        record = await q.get_job(job.id)
        kept = await q.redis.lrange(q.keys.set_aside(job.id), 0, -1)
    assert record is not None
    assert record.error == "malformed job: job key is a list, not a hash"
    assert kept == ["someone's list"]


async def test_crashed_loop_restarts_and_readiness_is_red_meanwhile(redis_url: str) -> None:
    """An id that is not UTF-8 makes the reclaim loop's reply undecodable (it raises): the
    loop restarts, readiness is red until it does, and stalled jobs are reclaimed after."""
    seen = Seen()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])
    ran: list[str] = []

    @worker.processor("lc")
    async def handle(job: Job[Any]) -> None:
        ran.append(job.id)

    raw = raw_client(redis_url)
    async with Queue("lc", redis_url=redis_url) as q:
        k = q.keys
        async with running(worker):
            await eventually(
                lambda: _true(worker.health().ready), timeout=10, description="worker ready"
            )
            bad_id = b"\xff\xfe"
            bad_key = k.job_prefix.encode() + bad_id
            await raw.hset(bad_key, mapping={"data": "{}", "att": 0, "stl": 0, "lk": "ghost"})
            await raw.zadd(k.active, {bad_id: 0})  # a lease that expired long ago

            problems = await eventually(
                lambda: _problems(worker),
                timeout=10,
                interval=0.005,
                description="readiness red",
            )
            assert problems == ["queue lc: reclaim loop down"]
            assert not worker.health().ready
            await eventually(
                lambda: _true(worker.health().ready), timeout=10, description="ready again"
            )
            # The restarted loop reclaims a job whose worker is gone (its lease expired).
            orphan = "orphan-1"
            fields = {"data": "{}", "att": 0, "stl": 0, "state": "active", "lk": "ghost"}
            await q.redis.hset(k.job(orphan), mapping=fields)
            await q.redis.zadd(k.active, {orphan: 0})

            async def orphan_ran() -> bool:
                return orphan in ran and (await q.counts())["dead"] == 1

            await eventually(orphan_ran, timeout=10, description="orphan reclaimed and run")
        dead = await q.dead_letters()
    await raw.aclose()
    assert "reclaim" in seen.crashes
    # Its id cannot be decoded: dead-lettered, under the id escaped.
    assert [(d.id, d.error) for d in dead] == [("\\xff\\xfe", "malformed job: id is not UTF-8")]


async def test_script_error_is_reported_as_such_not_as_an_outage(redis_url: str) -> None:
    """The queue's active set replaced by a string: renewing a lease fails inside the script.
    That is a script error (Redis is up): reported as one, the worker stays ready."""
    seen = Seen()
    worker = Worker(settings=fast_settings(redis_url), observers=[seen])
    release_event = asyncio.Event()

    @worker.processor("se")
    async def handle(job: Job[Any]) -> None:
        await release_event.wait()

    async with Queue("se", redis_url=redis_url) as q:
        await q.enqueue({})
        async with running(worker):
            await eventually(
                lambda: _true(worker.active == 1), timeout=10, description="job running"
            )
            await q.redis.delete(q.keys.active)
            await q.redis.set(q.keys.active, "garbage")
            await eventually(
                lambda: _true("extend" in seen.script_errors),
                timeout=10,
                description="extend's script error reported",
            )
            health = worker.health()
            release_event.set()
    assert seen.redis_errors == []
    assert health.ready
    assert all(q.redis_ok for q in health.queues)


async def test_a_lease_clock_of_another_type_is_replaced(redis_url: str) -> None:
    """The queue's lease clock (read by fetch, extend and reclaim) holding a hash must not stop
    the queue: the scripts overwrite it with the time."""
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor("lk")
    async def handle(job: Job[Any]) -> None:
        pass

    async with Queue("lk", redis_url=redis_url) as q:
        await q.redis.hset(q.keys.lease_clock, mapping={"not": "a clock"})
        await q.enqueue_many([{}] * 5)
        async with running(worker):

            async def drained() -> bool:
                return (await q.counts())["completed"] == 5

            await eventually(drained, timeout=10, description="5 completed")
        clock = await q.redis.get(q.keys.lease_clock)
    assert clock is not None
    assert clock.isdigit()


async def test_a_job_reclaimed_meanwhile_is_not_moved(redis_url: str) -> None:
    """The rewrite waited out a partition longer than the lease, and a reclaim put the raw id
    back in the queue: moving the hash now would leave that id without one (the job lost).
    Only the run holding the lease may move it; a hash under the shown id is never replaced."""
    raw = raw_client(redis_url)
    async with Queue("dr", redis_url=redis_url) as q:
        k = q.keys
        bad_id = b"job\xff"
        bad_key = k.job_prefix.encode() + bad_id
        await raw.hset(bad_key, mapping={"data": "{}", "att": 0, "stl": 1, "state": "waiting"})
        await raw.rpush(k.wait, bad_id)  # reclaimed: no lease, waiting again
        stale = await make_decodable(q.scripts, k, raw_id=bad_id, raw=b"{}", token="t1")
        kept = await raw.hgetall(bad_key)
        # Leased again, but a job of that literal id exists: it is not overwritten.
        await raw.hset(bad_key, mapping={"lk": "t2", "state": "active"})
        await raw.zadd(k.active, {bad_id: 1})
        await q.redis.hset(k.job("job\\xff"), mapping={"data": "{}", "att": "0", "stl": "0"})
        clash = await make_decodable(q.scripts, k, raw_id=bad_id, raw=b"{}", token="t2")
        other = await q.redis.hgetall(k.job("job\\xff"))
    await raw.aclose()
    assert stale is False
    assert kept[b"state"] == b"waiting"
    assert clash is False
    assert other == {"data": "{}", "att": "0", "stl": "0"}


async def _true(value: bool) -> bool:
    return value


async def _problems(worker: Worker) -> list[str]:
    return readiness_problems(worker)


async def test_making_a_job_decodable_twice_changes_nothing_more(redis_url: str) -> None:
    """The worker retries the rewrite of a job whose id is not UTF-8 when Redis drops the
    connection, so it may run again after it took effect: the second time must neither leave
    a stray hash under the raw id nor touch the moved job."""
    raw = raw_client(redis_url)
    async with Queue("dd", redis_url=redis_url) as q:
        k = q.keys
        bad_id = b"\xff\xfe"
        bad_key = k.job_prefix.encode() + bad_id
        fields = {"data": b"\xff{", "att": 0, "stl": 0, "lk": "t1", "state": "active"}
        await raw.hset(bad_key, mapping=fields)
        await raw.zadd(k.active, {bad_id: 123})
        done = [await make_decodable(q.scripts, k, raw_id=bad_id, raw=b"\xff{", token="t1")
                for _ in range(2)]  # fmt: skip
        moved = await q.redis.hgetall(k.job("\\xff\\xfe"))
        stray = await raw.exists(bad_key)
        active = await q.redis.zrange(k.active, 0, -1, withscores=True)
    await raw.aclose()
    assert done == [True, False]
    assert stray == 0
    assert moved == {"data": "\\xff{", "att": "0", "stl": "0", "lk": "t1", "state": "active"}
    assert active == [("\\xff\\xfe", 123.0)]
