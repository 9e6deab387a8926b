"""Read the load of many queues in one round trip: what autoscalers and gauges observe."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from worker_runtime.core.keys import DEFAULT_PREFIX, QueueKeys
from worker_runtime.redis_io.connection import RedisClient
from worker_runtime.redis_io.scripts import Scripts


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """One queue at one instant (Redis' clock). Counters are monotonic totals."""

    queue: str
    at_ms: int
    waiting: int
    due_delayed: int  # delayed jobs already due: as ready as waiting ones
    delayed: int
    active: int
    dead: int
    enqueued: int
    completed: int
    failed: int
    busy_ms: int  # summed run time of finished attempts
    oldest_waiting_enqueued_ms: int | None
    retried: int = 0  # failed attempts that were retried

    @property
    def attempts_finished(self) -> int:
        """Attempts that ended: completed, failed for good, or failed and retried."""
        return self.completed + self.failed + self.retried

    @property
    def backlog(self) -> int:
        return self.waiting + self.due_delayed

    @property
    def oldest_waiting_age_seconds(self) -> float:
        if self.oldest_waiting_enqueued_ms is None:
            return 0.0
        return max(0.0, (self.at_ms - self.oldest_waiting_enqueued_ms) / 1000)


@functools.lru_cache(maxsize=8192)
def _keys(queue: str, prefix: str) -> tuple[bytes, ...]:
    # Encoded once per queue: an operator observes a thousand queues on every tick.
    k = QueueKeys(queue, prefix)
    return tuple(key.encode() for key in (k.wait, k.delayed, k.active, k.stats, k.dead,
                                          k.job_prefix))  # fmt: skip


def _parse(queue: str, reply: Sequence[Any]) -> QueueSnapshot:
    values = [int(v) for v in reply]
    return QueueSnapshot(
        queue=queue,
        at_ms=values[0],
        waiting=values[1],
        due_delayed=values[2],
        delayed=values[3],
        active=values[4],
        dead=values[5],
        enqueued=values[6],
        completed=values[7],
        failed=values[8],
        busy_ms=values[9],
        oldest_waiting_enqueued_ms=values[10] if values[10] >= 0 else None,
        retried=values[11],
    )


async def snapshot_queues(
    redis: RedisClient, queues: Sequence[str], *, prefix: str = DEFAULT_PREFIX
) -> dict[str, QueueSnapshot]:
    """Snapshots of ``queues``: one pipelined round trip (concurrent calls on a Cluster)."""
    names = list(dict.fromkeys(queues))
    if not names:
        return {}
    scripts = Scripts(redis)
    if isinstance(redis, RedisCluster):
        replies = await asyncio.gather(
            *(scripts.observe(keys=_keys(name, prefix)) for name in names)
        )
    else:
        async with redis.pipeline(transaction=False) as pipe:
            for name in names:
                await scripts.observe(keys=_keys(name, prefix), client=pipe)
            replies = await pipe.execute()
    return {name: _parse(name, reply) for name, reply in zip(names, replies, strict=True)}
