"""The producer and admin API of one queue: enqueue, counts, jobs, dead-letter operations."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from worker_runtime.config import DEFAULT_EVENTS_MAX_LEN
from worker_runtime.connection import connect, ensure_ready
from worker_runtime.control_scripts import ControlScripts
from worker_runtime.core.codec import JobRecord, decode_job, encode_payload
from worker_runtime.core.keys import DEFAULT_PREFIX, QueueKeys, validate_queue_name
from worker_runtime.events import wait_for_job
from worker_runtime.flows import ChildFailurePolicy, Flow, enqueue_flow
from worker_runtime.scripts import Scripts

#: Jobs per enqueue script call: bounds how long one call holds Redis.
ENQUEUE_CHUNK = 1000

COUNT_STATES = (
    "waiting", "active", "delayed", "completed", "failed", "dead", "cancelled", "waiting_children",
)  # fmt: skip

#: Priorities are integers in this range (the prioritized ZSET's score keeps them exact).
MAX_PRIORITY = 1_000_000


@dataclass(frozen=True, slots=True)
class EnqueuedJob:
    """The id of an enqueued job and whether this call added it (False: the id existed)."""

    id: str
    added: bool


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job for `Queue.enqueue_many`."""

    data: Any
    id: str | None = None
    delay_seconds: float = 0.0
    #: Absolute due time: an aware datetime or epoch seconds (Redis' clock decides "now").
    run_at: datetime | float | None = None
    #: Higher runs first; 0 (the default) is the plain FIFO list. FIFO within one priority.
    priority: int = 0


class InvalidJobSpec(ValueError):
    """A job that cannot be enqueued as given (the message names the field)."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def when_argument(spec: JobSpec) -> str:
    """enqueue.lua's 'when': '0' now, 'N' a delay in ms, '@N' due at epoch ms N."""
    if spec.run_at is None:
        if not math.isfinite(spec.delay_seconds):
            raise InvalidJobSpec(
                f"delay_seconds: must be a finite number, got {spec.delay_seconds}"
            )
        return str(max(0, round(spec.delay_seconds * 1000)))
    if spec.delay_seconds:
        raise InvalidJobSpec("run_at: give either run_at or delay_seconds, not both")
    if isinstance(spec.run_at, datetime):
        if spec.run_at.tzinfo is None:
            raise InvalidJobSpec("run_at: a naive datetime is ambiguous; give a timezone-aware one")
        at = spec.run_at.timestamp()
    elif isinstance(spec.run_at, int | float) and math.isfinite(spec.run_at):
        at = float(spec.run_at)
    else:
        raise InvalidJobSpec(f"run_at: expected a datetime or epoch seconds, got {spec.run_at!r}")
    return f"@{max(0, round(at * 1000))}"


def priority_argument(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidJobSpec(f"priority: must be an integer, got {priority!r}")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidJobSpec(
            f"priority: must be between {-MAX_PRIORITY} and {MAX_PRIORITY}, got {priority}"
        )
    return priority


def job_arguments(spec: JobSpec) -> tuple[str, list[str | int]]:
    """A job's id and its enqueue.lua quadruple (id, payload, when, priority)."""
    job_id = spec.id or new_job_id()
    when = when_argument(spec)
    priority = priority_argument(spec.priority)
    return job_id, [job_id, encode_payload(spec.data), when, priority]


def enqueue_arguments(jobs: Iterable[JobSpec | Any]) -> tuple[list[str], list[list[str | int]]]:
    """Job ids and the ARGV of each enqueue script call (ENQUEUE_CHUNK jobs per call).

    A chunk without priorities sends 3 fields per job (id, payload, when): a 4th would cost
    every bulk enqueue. Plain payloads take a short path (no JobSpec, nothing to validate).
    """
    ids: list[str] = []
    chunks: list[list[str | int]] = []
    triples: list[str | int] = []
    priorities: list[int] = []
    for item in jobs:
        if isinstance(item, JobSpec):
            job_id, (_, payload, when, priority) = job_arguments(item)
            triples += (job_id, payload, when)
            priorities.append(int(priority))
        else:
            job_id = new_job_id()
            triples += (job_id, encode_payload(item), "0")
            priorities.append(0)
        ids.append(job_id)
        if len(priorities) >= ENQUEUE_CHUNK:
            chunks.append(_chunk_argv(triples, priorities))
            triples, priorities = [], []
    if priorities:
        chunks.append(_chunk_argv(triples, priorities))
    return ids, chunks


def _chunk_argv(triples: list[str | int], priorities: list[int]) -> list[str | int]:
    if not any(priorities):
        return [3, *triples]
    argv: list[str | int] = [4]
    for i, priority in enumerate(priorities):
        argv += (*triples[3 * i : 3 * i + 3], priority)
    return argv


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
        """Add many jobs in one round trip (pipelined script calls of ENQUEUE_CHUNK jobs).

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
            k.children_prefix, k.child_failures_prefix,
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
        queue) have completed; see `worker_runtime.flows` for the failure policy."""
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
        k = self.keys
        keys = [
            k.wait, k.active, k.delayed, k.prioritized, k.cancelled, k.stats, k.job_prefix,
            k.group_parked_prefix, k.events, k.flows, k.child_failures_prefix, k.failed, k.dead,
            k.marker,
        ]  # fmt: skip
        maxlen = DEFAULT_EVENTS_MAX_LEN if events_max_len is None else events_max_len
        dead_letter = 1  # a parent failed by this cancel goes where the queue's failures go
        was = str(await self.control.cancel(keys=keys, args=[job_id, maxlen, reason, dead_letter]))
        return was not in ("", "completed", "failed", "dead", "cancelled")

    async def wait_for(self, job_id: str, *, timeout: float | None = None) -> JobRecord:  # noqa: ASYNC109 (the API the issue names)
        """Wait until the job is completed, failed, dead-lettered or cancelled; return it.

        Follows the queue's event stream (see `worker_runtime.events`); raises TimeoutError.
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
        """Requeue dead-lettered jobs (all when ``ids`` is None) with fresh attempts."""
        k = self.keys
        keys = [k.dead, k.wait, k.marker, k.job_prefix, k.prioritized, k.stats]
        return await self._each_dead_batch(ids, lambda batch: self.scripts.replay(keys, batch))

    async def purge_dead(self, ids: Sequence[str] | None = None) -> int:
        """Delete dead-lettered jobs (all when ``ids`` is None)."""
        keys = [self.keys.dead, self.keys.job_prefix]
        return await self._each_dead_batch(ids, lambda batch: self.scripts.purge(keys, batch))

    async def _each_dead_batch(self, ids: Sequence[str] | None, call: Any) -> int:
        total = 0
        if ids is not None:
            for start in range(0, len(ids), ENQUEUE_CHUNK):
                total += int(await call(list(ids[start : start + ENQUEUE_CHUNK])))
            return total
        while batch := await self.dead_letter_ids(limit=ENQUEUE_CHUNK):
            total += int(await call(batch))
        return total


class JobActiveError(RuntimeError):
    """The job is leased by a worker right now."""
