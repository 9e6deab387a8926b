"""What each page shows, computed from the sampler, Redis and the pools reader (no HTML here)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from shoal.dashboard.dead_letters import newest
from shoal.dashboard.history import sparkline_points
from shoal.dashboard.sampler import Sampler
from worker_runtime.core.codec import JobRecord
from worker_runtime.core.keys import QueueKeys
from worker_runtime.observing.heartbeat import WorkerInfo
from worker_runtime.producing.queue import Queue

SPARK_BUCKETS = 60


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    waiting: int
    active: int
    delayed: int
    failed: int  # finally failed, total since the queue began
    completed: int
    dead: int
    arrival: float
    finish: float
    oldest_age: float
    arrival_points: str
    finish_points: str
    backlog_points: str


def queue_rows(sampler: Sampler) -> list[QueueRow]:
    rows = []
    for name in sampler.queues:
        history = sampler.history(name)
        snap = history.latest
        if snap is None:
            continue
        rates = history.rates()
        arrivals, finishes, backlog = history.series(buckets=SPARK_BUCKETS)
        top = max([*arrivals, *finishes, 0.0])
        rows.append(
            QueueRow(
                name=name,
                waiting=snap.backlog,
                active=snap.active,
                delayed=snap.delayed - snap.due_delayed,
                failed=snap.failed,
                completed=snap.completed,
                dead=snap.dead,
                arrival=rates.arrival,
                finish=rates.finish,
                oldest_age=snap.oldest_waiting_age_seconds,
                # arrival and finish share one scale, so the two lines compare at a glance
                arrival_points=sparkline_points(arrivals, slots=SPARK_BUCKETS, top=top),
                finish_points=sparkline_points(finishes, slots=SPARK_BUCKETS, top=top),
                backlog_points=sparkline_points([float(b) for b in backlog], slots=SPARK_BUCKETS),
            )
        )
    return rows


def window_label(sampler: Sampler) -> str:
    seconds = sampler.settings.history_seconds
    if seconds == 3600:
        return "hour"
    return f"{seconds / 60:g} min" if seconds >= 120 else f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class WorkerRow:
    info: WorkerInfo
    uptime: float
    heartbeat_age: float


def worker_rows(workers: list[WorkerInfo], *, now: float | None = None) -> list[WorkerRow]:
    now_ms = (time.time() if now is None else now) * 1000
    return [
        WorkerRow(
            info=w,
            uptime=max(0.0, (now_ms - w.started_at) / 1000),
            heartbeat_age=max(0.0, (now_ms - w.last_heartbeat) / 1000),
        )
        for w in workers
    ]


async def find_job(sampler: Sampler, *, job_id: str, queue: str | None) -> JobRecord | None:
    """The job ``job_id`` in ``queue``, or in whichever known queue holds it."""
    prefix = sampler.settings.prefix
    candidates = [queue] if queue else sampler.queues
    async with sampler.redis.pipeline(transaction=False) as pipe:
        for name in candidates:
            pipe.exists(QueueKeys(name, prefix).job(job_id))
        found = await pipe.execute()
    for name, exists in zip(candidates, found, strict=True):
        if exists:
            return await Queue(name, redis=sampler.redis, prefix=prefix).get_job(job_id)
    return None


async def recent_failures(sampler: Sampler, queue: str, *, count: int = 10) -> list[JobRecord]:
    q = Queue(queue, redis=sampler.redis, prefix=sampler.settings.prefix)
    total = (await q.counts())["dead"]
    return await newest(q, total=total, start=0, count=count)


def shown(value: Any) -> str:
    """A payload, result or progress value as indented JSON."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
