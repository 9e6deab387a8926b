"""The scripts check what they read before their first write: garbage in a job hash must not
stop a script halfway (Redis keeps the writes made before an error)."""

from __future__ import annotations

import json

import pytest

from worker_runtime import Queue
from worker_runtime.core.keys import QueueKeys

pytestmark = pytest.mark.integration


def plain_fetch_keys(k: QueueKeys) -> list[str]:
    return [k.wait, k.active, k.delayed, k.marker, k.job_prefix]


def fail_keys(k: QueueKeys) -> list[str]:
    return [
        k.active, k.wait, k.delayed, k.dead, k.failed, k.stats, k.marker, k.job_prefix,
        k.prioritized, k.events, k.flows, k.child_failures_prefix,
    ]  # fmt: skip


async def test_fail_with_garbage_fields_still_retries_the_job(redis_url: str) -> None:
    async with Queue("vf", redis_url=redis_url) as q:
        k = q.keys
        job = await q.enqueue({})
        await q.scripts.fetch(keys=plain_fetch_keys(k), args=[60_000, 1, "w"])
        # Corrupted while it ran: the start time, the history and the attempt count.
        await q.redis.hset(k.job(job.id), mapping={"st": "x", "hist": "{not json", "att": "?"})
        record = json.dumps({"attempt": 1, "error": "boom"})
        args = [job.id, "w", "retry", 0, "boom", "", record, 0]
        applied = await q.scripts.fail(fail_keys(k), args)
        waiting = await q.redis.lrange(k.wait, 0, -1)
        stored = await q.get_job(job.id)
    assert applied == 1
    assert waiting == [job.id]
    assert stored is not None
    assert stored.attempts == 1
    assert [h.error for h in stored.history][-1] == "boom"


@pytest.mark.parametrize("action", ["retry", "dead"])
async def test_fail_sent_again_after_a_lost_reply_is_applied_once(
    redis_url: str, action: str
) -> None:
    """The repeat of a failure Redis recorded (its reply lost) answers 'applied' again (the
    worker then tells its observers) and writes nothing twice."""
    async with Queue("vg", redis_url=redis_url) as q:
        k = q.keys
        job = await q.enqueue({})
        await q.scripts.fetch(keys=plain_fetch_keys(k), args=[60_000, 1, "w"])
        record = json.dumps({"attempt": 1, "error": "boom"})
        args = [job.id, "w", action, 0, "boom", "", record, 0]
        first = await q.scripts.fail(fail_keys(k), args)
        again = await q.scripts.fail(fail_keys(k), args)
        stored = await q.get_job(job.id)
        stats = await q.redis.hgetall(k.stats)
        waiting = await q.redis.lrange(k.wait, 0, -1)
    assert (first, again) == (1, 1)
    assert stored is not None
    assert len(stored.history) == 1
    assert stored.attempts == 1
    assert stats.get("retried" if action == "retry" else "failed") == "1"
    assert waiting == ([job.id] if action == "retry" else [])


async def test_complete_returns_the_positions_it_refused(redis_url: str) -> None:
    """Only acknowledged runs may be reported as completed: the script names the others (a
    lost lease, a job no longer active, the same run twice in one batch)."""
    async with Queue("vr", redis_url=redis_url) as q:
        k = q.keys
        jobs = await q.enqueue_many([{"i": i} for i in range(3)])
        await q.scripts.fetch(keys=plain_fetch_keys(k), args=[60_000, 3, "w"])
        await q.redis.zrem(k.active, jobs[2].id)  # e.g. removed while it ran
        triples = [(jobs[0].id, "w"), (jobs[1].id, "not-the-lease"), (jobs[2].id, "w"),
                   (jobs[0].id, "w")]  # fmt: skip
        args: list[object] = [-1, 0]
        for job_id, token in triples:
            args += [job_id, token, ""]
        refused = await q.scripts.complete(
            keys=[k.active, k.completed, k.stats, k.job_prefix], args=args
        )
        stats = await q.redis.hgetall(k.stats)
    assert sorted(refused[0]) == [1, 2, 3]
    assert refused[1] == []
    assert stats["completed"] == "1"


async def test_complete_sent_again_after_a_lost_reply_reports_the_same(redis_url: str) -> None:
    """A dropped connection after Redis ran the ack makes the worker send the batch again: the
    repeat must not call the jobs refused (observers would never hear of their completion),
    nor count them twice."""
    async with Queue("va", redis_url=redis_url) as q:
        k = q.keys
        jobs = await q.enqueue_many([{"i": i} for i in range(2)])
        await q.scripts.fetch(keys=plain_fetch_keys(k), args=[60_000, 2, "w"])
        args: list[object] = [-1, 0]
        for job in jobs:
            args += [job.id, "w", ""]
        keys = [k.active, k.completed, k.stats, k.job_prefix]
        first = await q.scripts.complete(keys=keys, args=args)
        again = await q.scripts.complete(keys=keys, args=args)
        stats = await q.redis.hgetall(k.stats)
        progress = await q.scripts.progress(keys=[k.job(jobs[0].id), k.events],
                                            args=["w", "50", 0, jobs[0].id])  # fmt: skip
    assert (first, again) == ([[], []], [[], []])
    assert stats["completed"] == "2"
    assert progress == 0  # the token stays on the record; only an active run reports


async def test_complete_with_one_garbage_hash_acks_the_whole_batch(redis_url: str) -> None:
    async with Queue("vc", redis_url=redis_url) as q:
        k = q.keys
        jobs = await q.enqueue_many([{"i": i} for i in range(3)])
        await q.scripts.fetch(keys=plain_fetch_keys(k), args=[60_000, 3, "w"])
        await q.redis.hset(k.job(jobs[1].id), mapping={"att": "x", "st": "later"})
        args: list[object] = [-1, 0]
        for job in jobs:
            args += [job.id, "w", "1"]  # id, lease token, result
        refused = await q.scripts.complete(
            keys=[k.active, k.completed, k.stats, k.job_prefix], args=args
        )
        counts = await q.counts()
        stats = await q.redis.hgetall(k.stats)
    assert refused == [[], []]
    assert counts["completed"] == 3
    assert counts["active"] == 0
    assert stats["completed"] == "3"
