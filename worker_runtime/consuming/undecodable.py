"""Jobs whose id or payload is not UTF-8 (written into Redis by something else): the worker
receives the fetch reply undecoded (`scripts.call_undecoded`), so such a job fails alone. This
makes it readable before it is dead-lettered: every reader of Redis decodes ids and fields."""

from __future__ import annotations

from typing import Any

from worker_runtime.core.keys import QueueKeys


def shown_id(raw_id: bytes) -> str:
    """The id as readers will see it: bytes that are not UTF-8 as ``\\xNN``."""
    return raw_id.decode(errors="backslashreplace")


async def make_decodable(redis: Any, keys: QueueKeys, raw_id: bytes, raw: bytes) -> None:
    """Rewrite a leased job's payload, and move it to its `shown_id`, keeping its lease."""
    job_id = shown_id(raw_id)
    raw_key = keys.job_prefix.encode() + raw_id
    await redis.hset(raw_key, "data", raw.decode(errors="backslashreplace"))
    if job_id.encode() == raw_id:
        return
    # The escaped id takes over the lease; in each step between, the hash exists under one of
    # the two names and a lease covers it (or reclaim requeues it).
    score = await redis.zscore(keys.active, raw_id)
    if score is not None:
        await redis.zadd(keys.active, {job_id: score})
        await redis.rename(raw_key, keys.job(job_id))
        await redis.zrem(keys.active, raw_id)
