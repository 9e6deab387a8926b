"""The sync producer facade shares keys and scripts with the async Queue."""

from __future__ import annotations

import pytest

from tests.harness.redis_server import RedisServer
from worker_runtime import JobSpec, Queue
from worker_runtime.producing.sync import SyncQueue

pytestmark = pytest.mark.integration


async def test_sync_enqueue_is_seen_by_async_queue(redis_server: RedisServer) -> None:
    redis_url = redis_server.url
    await flush(redis_url)
    with SyncQueue("s", redis_url=redis_url) as sq:
        first = sq.enqueue({"a": 1}, id="x1")
        dup = sq.enqueue({"a": 2}, id="x1")
        many = sq.enqueue_many([JobSpec(data={"i": i}) for i in range(1500)])
        later = sq.enqueue({"b": 1}, delay_seconds=30)
        assert first.added
        assert not dup.added
        assert all(j.added for j in many)
        assert sq.counts()["waiting"] == 1501
        assert sq.counts()["delayed"] == 1
        rec = sq.get_job("x1")
        assert rec is not None
        assert rec.data == {"a": 1}
    async with Queue("s", redis_url=redis_url) as q:
        assert (await q.counts())["waiting"] == 1501
        delayed = await q.get_job(later.id)
        assert delayed is not None
        assert delayed.state.value == "delayed"


async def flush(url: str) -> None:
    async with Queue("s", redis_url=url) as q:
        await q.redis.flushall()
