"""What the autoscaler observes of many pools, read from Redis in one pipelined round trip.

Both drivers (the operator and `shoal up`) call `observe_pools` once per tick for all their
pools; heartbeats (per-worker load) cost one more read. A Redis failure yields a failed
observation for every pool, which makes the autoscaler hold the current size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.observations import Observations, QueueObservation, WorkerLoad
from worker_runtime.observing.heartbeat import WorkerInfo, list_workers
from worker_runtime.producing.queue_snapshot import QueueSnapshot, snapshot_queues
from worker_runtime.redis_io.connection import CONNECTION_ERRORS, RedisClient


@dataclass(frozen=True, slots=True)
class PoolQuery:
    """One pool to observe: its key (e.g. namespace/name), queues and current replicas."""

    key: str
    queues: tuple[str, ...]
    current_replicas: int


def queue_observation(snap: QueueSnapshot) -> QueueObservation:
    # Counters at attempt level on both sides, so retries count as arrivals and as finishes.
    return QueueObservation(
        queue=snap.queue,
        waiting=snap.waiting,
        due_delayed=snap.due_delayed,
        in_flight=snap.active,
        arrived_total=snap.enqueued + snap.retried,
        finished_total=snap.attempts_finished,
        busy_seconds_total=snap.busy_ms / 1000,
        oldest_waiting_age_seconds=snap.oldest_waiting_age_seconds,
    )


def worker_loads(workers: Sequence[WorkerInfo], queues: Sequence[str]) -> tuple[WorkerLoad, ...]:
    """Heartbeats of the workers serving any of ``queues``, named by pod (or worker id)."""
    if not workers:
        return ()  # a fleet of idle pools: asked once per pool per tick
    wanted = set(queues)
    return tuple(
        WorkerLoad(name=w.pod or w.id, in_flight=sum(w.in_flight.get(q, 0) for q in wanted))
        for w in workers
        if wanted.intersection(w.queues)
    )


async def observe_pools(
    redis: RedisClient,
    pools: Sequence[PoolQuery],
    *,
    prefix: str = DEFAULT_PREFIX,
    with_workers: bool = True,
) -> dict[str, Observations]:
    """Observations of every pool; failed ones (holding size) when Redis cannot be read."""
    queues = [q for pool in pools for q in pool.queues]
    try:
        snaps = await snapshot_queues(redis, queues, prefix=prefix)
        workers = await list_workers(redis, prefix=prefix) if with_workers else []
    except CONNECTION_ERRORS as exc:
        error = f"Redis unreachable: {exc}"
        return {
            p.key: Observations.failed(current_replicas=p.current_replicas, error=error)
            for p in pools
        }
    return {
        p.key: Observations(
            current_replicas=p.current_replicas,
            queues=tuple(queue_observation(snaps[q]) for q in p.queues),
            workers=worker_loads(workers, p.queues),
        )
        for p in pools
    }
