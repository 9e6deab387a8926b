"""Heartbeats: the event loop's pulse in process, and each worker's load record in Redis.

Two clocks on purpose. The loop tick (`Heartbeat.last_tick`, monotonic) is updated by a task
on the event loop every interval; `/livez` reads it from another thread, so a blocked loop is
seen even though it cannot answer for itself. The Redis record is written by a separate task
from that tick, so a slow or unreachable Redis delays the record but never the tick.

The record is a HASH (``worker_key``) with a TTL of a few intervals, indexed in a ZSET
(``workers_index_key``) by last heartbeat; `list_workers` is what the operator and the CLI use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from worker_runtime.config import WorkerSettings
from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.consumer import QueueConsumer
from worker_runtime.core.keys import DEFAULT_PREFIX, worker_key, workers_index_key
from worker_runtime.redis_io.connection import CONNECTION_ERRORS


class WorkerView(Protocol):
    """What the heartbeat and the health report read of a `Worker` (a protocol: the worker
    imports the health module, so these modules must not import it back)."""

    @property
    def id(self) -> str: ...
    @property
    def settings(self) -> WorkerSettings: ...
    @property
    def redis(self) -> aioredis.Redis | None: ...
    @property
    def consumers(self) -> Mapping[str, QueueConsumer]: ...
    @property
    def extensions(self) -> Sequence[object]: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def draining(self) -> bool: ...
    @property
    def processed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def redis_warnings(self) -> Sequence[str]: ...


#: The record outlives the last heartbeat by this many intervals before Redis expires it.
TTL_INTERVALS = 3


class WorkerInfo(BaseModel):
    """One live worker as recorded in Redis (times in ms since the epoch)."""

    model_config = ConfigDict(frozen=True)

    id: str
    pod: str
    host: str
    pid: int
    version: str
    queues: list[str]
    in_flight: dict[str, int] = Field(description="jobs running now, per queue")
    capacity: dict[str, int] = Field(description="concurrency per queue")
    max_jobs: int
    processed: int
    failed: int
    started_at: int
    last_heartbeat: int
    interval_ms: int
    draining: bool

    @property
    def active(self) -> int:
        return sum(self.in_flight.values())

    def to_redis(self) -> dict[str, str]:
        fields = self.model_dump()
        return {k: json.dumps(v) if k in _JSON_FIELDS else str(v) for k, v in fields.items()}

    @classmethod
    def from_redis(cls, fields: dict[str, str]) -> WorkerInfo:
        decoded: dict[str, Any] = dict(fields)
        for name in _JSON_FIELDS:
            if name in decoded:
                decoded[name] = json.loads(decoded[name])
        return cls.model_validate(decoded)


_JSON_FIELDS = ("queues", "in_flight", "capacity", "draining")


def _version() -> str:
    from worker_runtime.version import __version__

    return __version__


def snapshot(worker: WorkerView, *, now_ms: int, interval_ms: int) -> WorkerInfo:
    """The worker's state now, as a heartbeat record."""
    consumers = worker.consumers
    return WorkerInfo(
        id=worker.id,
        pod=os.environ.get("POD_NAME") or socket.gethostname(),
        host=socket.gethostname(),
        pid=os.getpid(),
        version=_version(),
        queues=list(consumers),
        in_flight={name: c.active for name, c in consumers.items()},
        capacity={name: c.concurrency for name, c in consumers.items()},
        max_jobs=worker.settings.max_jobs_per_worker,
        processed=worker.processed,
        failed=worker.failed,
        started_at=round((worker.started_at or time.time()) * 1000),
        last_heartbeat=now_ms,
        interval_ms=interval_ms,
        draining=worker.draining,
    )


class Heartbeat:
    """Worker extension: the loop tick plus the Redis record (interval from the settings)."""

    def __init__(self, *, interval_seconds: float, missed_for_dead: int = 3) -> None:
        self.interval = interval_seconds
        self.missed_for_dead = missed_for_dead
        #: monotonic time of the last loop tick; None before start
        self.last_tick: float | None = None
        #: wall-clock time (s) of the last loop tick, for health reports
        self.last_beat: float | None = None
        #: wall-clock time (s) of the last record Redis accepted
        self.last_written: float | None = None
        self.redis_ok = True
        self._worker: WorkerView | None = None
        self._task: asyncio.Task[None] | None = None
        self._write: asyncio.Task[None] | None = None

    def alive(self, *, now: float | None = None) -> bool:
        """True while the loop ticked within ``missed_for_dead`` intervals (any thread)."""
        tick = self.last_tick
        if tick is None:
            return True  # not started yet: nothing to judge
        now = time.monotonic() if now is None else now
        return now - tick <= self.interval * self.missed_for_dead

    async def start(self, worker: WorkerView) -> None:
        self._worker = worker
        self._tick()
        self._task = asyncio.create_task(self._loop(), name="shoal-heartbeat")

    async def stop(self, worker: WorkerView) -> None:
        for task in (self._task, self._write):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                    await task
        self._task = self._write = None
        if worker.redis is not None:
            # Leave at once rather than linger until the TTL: the operator counts live workers.
            with contextlib.suppress(*CONNECTION_ERRORS):
                prefix = worker.settings.key_prefix
                async with worker.redis.pipeline(transaction=False) as pipe:
                    pipe.delete(worker_key(prefix, worker.id))
                    pipe.zrem(workers_index_key(prefix), worker.id)
                    await pipe.execute()

    def _tick(self) -> None:
        self.last_tick = time.monotonic()
        self.last_beat = time.time()

    async def _loop(self) -> None:
        while True:
            self._tick()
            if self._write is None or self._write.done():
                self._write = asyncio.create_task(self.write_once())
            await asyncio.sleep(self.interval)

    async def write_once(self) -> None:
        worker = self._worker
        if worker is None or worker.redis is None:
            return
        now = time.time()
        info = snapshot(worker, now_ms=round(now * 1000), interval_ms=round(self.interval * 1000))
        try:
            await write_record(
                worker.redis, info, prefix=worker.settings.key_prefix, ttl_seconds=self.ttl
            )
        except CONNECTION_ERRORS:
            reraise_if_cancelling()
            self.redis_ok = False
        else:
            self.redis_ok = True
            self.last_written = now

    @property
    def ttl(self) -> float:
        return self.interval * TTL_INTERVALS


async def write_record(
    redis: aioredis.Redis, info: WorkerInfo, *, prefix: str, ttl_seconds: float
) -> None:
    key = worker_key(prefix, info.id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=cast(Any, info.to_redis()))
        pipe.pexpire(key, max(1, round(ttl_seconds * 1000)))
        pipe.zadd(workers_index_key(prefix), {info.id: info.last_heartbeat})
        await pipe.execute()


async def list_workers(
    redis: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX, prune: bool = True
) -> list[WorkerInfo]:
    """Live workers (those whose record has not expired), most recent heartbeat first.

    With ``prune``, index entries whose record expired are removed on the way (two round
    trips in all, whatever the number of workers).
    """
    index = workers_index_key(prefix)
    ids = cast(list[str], await redis.zrevrange(index, 0, -1))
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.hgetall(worker_key(prefix, worker_id))
        records: list[dict[str, str]] = await pipe.execute()
    live: list[WorkerInfo] = []
    gone: list[str] = []
    for worker_id, fields in zip(ids, records, strict=True):
        if fields:
            live.append(WorkerInfo.from_redis(fields))
        else:
            gone.append(worker_id)
    if prune and gone:
        await redis.zrem(index, *gone)
    return live
