"""A small synchronous facade for producers in sync code (web views, scripts, Celery-era apps)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis

from worker_runtime.core.codec import JobRecord, decode_job
from worker_runtime.core.keys import (
    DEFAULT_EVENTS_MAX_LEN,
    DEFAULT_PREFIX,
    QueueKeys,
    validate_queue_name,
)
from worker_runtime.producing.queue import (
    EnqueuedJob,
    JobSpec,
    cancel_keys,
    cancelled_now,
    counts_from_replies,
    enqueue_arguments,
    enqueue_keys,
    enqueue_results,
    queue_counts_commands,
)
from worker_runtime.redis_io.scripts import script_source


class SyncQueue:
    """Enqueue and inspect a queue without an event loop; same scripts and keys as `Queue`."""

    def __init__(
        self,
        name: str,
        *,
        redis_url: str = "redis://localhost:6379/0",
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.name = validate_queue_name(name)
        self.redis = redis.Redis.from_url(
            redis_url, decode_responses=True, socket_connect_timeout=2
        )
        self.keys = QueueKeys(name, prefix)
        self._enqueue = self.redis.register_script(script_source("enqueue"))
        self._cancel = self.redis.register_script(script_source("cancel"))

    def enqueue(
        self,
        data: Any = None,
        *,
        id: str | None = None,
        delay_seconds: float = 0.0,
        run_at: datetime | float | None = None,
        priority: int = 0,
    ) -> EnqueuedJob:
        spec = JobSpec(
            data=data, id=id, delay_seconds=delay_seconds, run_at=run_at, priority=priority
        )
        (job,) = self.enqueue_many([spec])
        return job

    def enqueue_many(self, jobs: Iterable[JobSpec | Any]) -> list[EnqueuedJob]:
        ids, chunks = enqueue_arguments(jobs)
        keys = enqueue_keys(self.keys)
        with self.redis.pipeline(transaction=False) as pipe:
            for chunk in chunks:
                self._enqueue(keys=keys, args=chunk, client=pipe)
            replies = pipe.execute()
        return enqueue_results(ids, replies)

    def cancel(self, job_id: str, *, reason: str = "") -> bool:
        """As `Queue.cancel`: True if the job was cancelled now (see docs/flow-control.md)."""
        args: list[str | int] = [job_id, DEFAULT_EVENTS_MAX_LEN, reason, ""]
        return cancelled_now(str(self._cancel(keys=cancel_keys(self.keys), args=args)))

    def counts(self) -> dict[str, int]:
        with self.redis.pipeline(transaction=False) as pipe:
            queue_counts_commands(pipe, self.keys)
            return counts_from_replies(pipe.execute())

    def get_job(self, job_id: str) -> JobRecord | None:
        fields: dict[str, str] = self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return decode_job(job_id, self.name, fields) if fields else None

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> SyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
