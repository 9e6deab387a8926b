"""The producer and admin API of one queue: enqueue, counts, jobs, dead-letter operations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from worker_runtime.core.codec import JobRecord, decode_job
from worker_runtime.core.keys import (
    DEFAULT_EVENTS_MAX_LEN,
    DEFAULT_PREFIX,
    QueueKeys,
    validate_queue_name,
)
from worker_runtime.producing.control_scripts import ControlScripts
from worker_runtime.producing.events import wait_for_job
from worker_runtime.producing.flows import ChildFailurePolicy, Flow, enqueue_flow
from worker_runtime.producing.job_spec import CONTROL_CHUNK
from worker_runtime.producing.job_spec import ENQUEUE_CHUNK as ENQUEUE_CHUNK
from worker_runtime.producing.job_spec import InvalidJobSpec as InvalidJobSpec
from worker_runtime.producing.job_spec import JobSpec as JobSpec
from worker_runtime.producing.job_spec import enqueue_arguments as enqueue_arguments
from worker_runtime.producing.job_spec import job_arguments as job_arguments
from worker_runtime.producing.job_spec import new_job_id as new_job_id
from worker_runtime.producing.job_spec import when_argument as when_argument
from worker_runtime.redis_io.connection import connect, ensure_ready
from worker_runtime.redis_io.scripts import Scripts

COUNT_STATES = (
    "waiting", "active", "delayed", "completed", "failed", "dead", "cancelled", "waiting_children",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    """The id of an enqueued job and whether this call added it (False: the id existed)."""

    id: str
    added: bool


def enqueue_results(ids: list[str], replies: list[list[int]]) -> list[EnqueuedJob]:
    flags = [flag for reply in replies for flag in reply]
    return [EnqueuedJob(job_id, bool(flag)) for job_id, flag in zip(ids, flags, strict=True)]


def counts_from_replies(replies: list[Any]) -> dict[str, int]:
    waiting, prioritized, active, delayed, (completed, failed, parked), dead, cancelled, flows = (
        replies
    )
    counts = {
        # Ready to run: the plain list, prioritized jobs and jobs parked by a group limit.
        "waiting": waiting + prioritized + max(0, int(parked or 0)),
        "active": active,
        "delayed": delayed,
        "completed": int(completed or 0),
        "failed": int(failed or 0),
        "dead": dead,
    }
    # Present only when non-zero, so the six keys of a plain queue stay the whole answer.
    if cancelled:
        counts["cancelled"] = cancelled
    if flows:
        counts["waiting_children"] = flows
    return counts


def queue_counts_commands(pipe: Any, keys: QueueKeys) -> None:
    """Queue the reads behind `Queue.counts` on a pipeline (sync or async)."""
    pipe.llen(keys.wait)
    pipe.zcard(keys.prioritized)
    pipe.zcard(keys.active)
    pipe.zcard(keys.delayed)
    pipe.hmget(keys.stats, ["completed", "failed", "parked"])
    pipe.zcard(keys.dead)
    pipe.zcard(keys.cancelled)
    pipe.zcard(keys.flows)


def enqueue_keys(keys: QueueKeys) -> list[str]:
    return [keys.wait, keys.delayed, keys.marker, keys.stats, keys.job_prefix, keys.prioritized]


def cancel_keys(k: QueueKeys) -> list[str]:
    """KEYS of cancel.lua, for `Queue.cancel` and `SyncQueue.cancel`."""
    return [
        k.wait, k.active, k.delayed, k.prioritized, k.cancelled, k.stats, k.job_prefix,
        k.group_parked_prefix, k.events, k.flows, k.child_failures_prefix, k.failed, k.dead,
        k.marker,
    ]  # fmt: skip


def cancelled_now(previous_state: str) -> bool:
    """cancel.lua returns the job's state before; a finished or missing job was not cancelled."""
    return previous_state not in ("", "completed", "failed", "dead", "cancelled")


class Queue:
    """A named queue on Redis. Cheap to create; share one Redis client between many queues."""

    def __init__(
        self,
        name: str,
        *,
        redis: aioredis.Redis | None = None,
        redis_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.name = validate_queue_name(name)
        if redis is None:
            redis = connect(redis_url or "redis://localhost:6379/0")
            self._owns_redis = True
        else:
            self._owns_redis = False
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._ready = not self.cluster
        self.keys = QueueKeys(name, prefix)
        self.scripts = Scripts(redis)
        self.control = ControlScripts(redis)

    async def _ensure_ready(self) -> None:
        if not self._ready:
            await ensure_ready(self.redis)
            self._ready = True

    async def close(self) -> None:
        if self._owns_redis:
            await self.redis.aclose()

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- producing -------------------------------------------------------------------------

    def _enqueue_keys(self) -> list[str]:
        return enqueue_keys(self.keys)

    async def enqueue(
        self,
        data: Any = None,
        *,
        id: str | None = None,
        delay_seconds: float = 0.0,
        run_at: datetime | float | None = None,
        priority: int = 0,
    ) -> EnqueuedJob:
        """Add one job. A caller-given ``id`` dedups: if it exists, nothing is added.

        ``delay_seconds`` or ``run_at`` (aware datetime or epoch seconds) schedule it;
        ``priority``: higher runs first (see docs/flow-control.md).
        """
        spec = JobSpec(
            data=data, id=id, delay_seconds=delay_seconds, run_at=run_at, priority=priority
        )
        (job,) = await self.enqueue_many([spec])
        return job

    async def enqueue_many(self, jobs: Iterable[JobSpec | Any]) -> list[EnqueuedJob]:
        """Add many jobs in one round trip (pipelined script calls of ENQUEUE_CHUNK jobs). A
        batch of up to ENQUEUE_CHUNK (10,000) jobs is one script call: written whole or, when
        Redis refuses it (maxmemory reached: `ResponseError` OOM), not at all.

        Items that are not `JobSpec` are taken as payloads.
        """
        ids, chunks = enqueue_arguments(jobs)
        if not chunks:
            return []
        await self._ensure_ready()
        keys = self._enqueue_keys()
        if len(chunks) == 1 or self.cluster:
            # Cluster pipelines cannot reload a script a node lost; calls stay one slot apiece.
            replies = [await self.scripts.enqueue(keys=keys, args=chunk) for chunk in chunks]
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for chunk in chunks:
                    await self.scripts.enqueue(keys=keys, args=chunk, client=pipe)
                replies = await pipe.execute()
        return enqueue_results(ids, replies)

    # --- reading ---------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """Jobs by state. ``completed``/``failed`` are totals since the queue began (monotonic);
        the others are the jobs in that state now."""
        await self._ensure_ready()
        async with self.redis.pipeline(transaction=False) as pipe:
            queue_counts_commands(pipe, self.keys)
            return counts_from_replies(await pipe.execute())

    async def get_job(self, job_id: str) -> JobRecord | None:
        await self._ensure_ready()
        fields: dict[str, str] = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return decode_job(job_id, self.name, fields) if fields else None

    async def remove(self, job_id: str) -> bool:
        """Delete a job that is not running. Returns False when there is no such job.

        Raises `JobActiveError` for a job a worker holds now (it would come back on ack).
        """
        await self._ensure_ready()
        k = self.keys
        keys = [
            k.wait, k.active, k.delayed, k.completed, k.failed, k.dead, k.job_prefix,
            k.prioritized, k.cancelled, k.group_parked_prefix, k.stats, k.flows,
            k.children_prefix, k.child_failures_prefix, k.marker,
        ]  # fmt: skip
        outcome = int(await self.scripts.remove(keys=keys, args=[job_id]))
        if outcome < 0:
            raise JobActiveError(f"job {job_id} is running; remove it after it finishes")
        return outcome == 1

    async def enqueue_flow(
        self,
        parent: Any,
        children: Sequence[JobSpec | Any],
        *,
        parent_id: str | None = None,
        priority: int = 0,
        on_child_failure: ChildFailurePolicy = "fail",
    ) -> Flow:
        """Add a parent job that runs after all ``children`` (payloads or `JobSpec`s, in this
        queue) have completed; see `worker_runtime.producing.flows` for the failure policy."""
        await self._ensure_ready()
        return await enqueue_flow(
            self,
            parent=parent,
            children=children,
            parent_id=parent_id,
            priority=priority,
            on_child_failure=on_child_failure,
        )

    async def cancel(
        self, job_id: str, *, reason: str = "", events_max_len: int | None = None
    ) -> bool:
        """Cancel a job that has not finished: waiting, delayed or parked ones never run; an
        active one is stopped by its worker at the next lease renewal (within a third of the
        lease). Never retried. False when there is no such job or it had finished already.

        ``events_max_len`` is the queue's stream length (None: the default; 0: no event).
        """
        await self._ensure_ready()
        maxlen = DEFAULT_EVENTS_MAX_LEN if events_max_len is None else events_max_len
        # A parent failed by this cancel goes where the queue's failures go, as its workers
        # recorded (cancel.lua): the producer does not know the queue's config.
        args: list[str | int] = [job_id, maxlen, reason, ""]
        return cancelled_now(str(await self.control.cancel(keys=cancel_keys(self.keys), args=args)))

    async def wait_for(self, job_id: str, *, timeout: float | None = None) -> JobRecord:  # noqa: ASYNC109 (the API the issue names)
        """Wait until the job is completed, failed, dead-lettered or cancelled; return it.

        Follows the queue's event stream (see `worker_runtime.producing.events`); raises
        TimeoutError.
        """
        await self._ensure_ready()
        return await wait_for_job(self, job_id, timeout=timeout)

    # --- dead-letter -----------------------------------------------------------------------

    async def dead_letter_ids(self, *, offset: int = 0, limit: int = 100) -> list[str]:
        await self._ensure_ready()
        ids = await self.redis.zrange(self.keys.dead, offset, offset + limit - 1)
        return [str(i) for i in ids]

    async def dead_letters(self, *, offset: int = 0, limit: int = 100) -> list[JobRecord]:
        """Dead-lettered jobs, oldest first, with payload, error, traceback and history."""
        ids = await self.dead_letter_ids(offset=offset, limit=limit)
        return await self._jobs(ids)

    async def _jobs(self, ids: Sequence[str]) -> list[JobRecord]:
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            replies = await pipe.execute()
        return [
            decode_job(job_id, self.name, fields)
            for job_id, fields in zip(ids, replies, strict=True)
            if fields
        ]

    async def replay_dead(self, ids: Sequence[str] | None = None) -> int:
        """Requeue dead-lettered jobs (all when ``ids`` is None) with fresh attempts.

        A flow's parent that a child took down stays dead-lettered (see docs/flow-control.md).
        """
        k = self.keys
        keys = [k.dead, k.wait, k.marker, k.job_prefix, k.prioritized, k.stats,
                k.child_failures_prefix]  # fmt: skip
        return await self._each_dead_batch(ids, lambda batch: self.scripts.replay(keys, batch))

    async def purge_dead(self, ids: Sequence[str] | None = None) -> int:
        """Delete dead-lettered jobs (all when ``ids`` is None)."""
        keys = [self.keys.dead, self.keys.job_prefix]
        return await self._each_dead_batch(ids, lambda batch: self.scripts.purge(keys, batch))

    async def _each_dead_batch(self, ids: Sequence[str] | None, call: Any) -> int:
        total = 0
        if ids is not None:
            for start in range(0, len(ids), CONTROL_CHUNK):
                total += int(await call(list(ids[start : start + CONTROL_CHUNK])))
            return total
        offset = 0  # past the ids left in the store (a parent replay skips)
        while batch := await self.dead_letter_ids(offset=offset, limit=CONTROL_CHUNK):
            done = int(await call(batch))
            total += done
            offset += len(batch) - done
        return total


class JobActiveError(RuntimeError):
    """The job is leased by a worker right now."""
