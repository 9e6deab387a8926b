"""The worker's health: the seed's fields (`health_of`) and its text report (`health_report`).

Everything here only reads plain attributes of the worker, its consumers and extensions, so it
is safe to call from the probe server's thread while the event loop is busy (or blocked).
"""

from __future__ import annotations

import time
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from worker_runtime.observing.heartbeat import Heartbeat, WorkerView

QueueState = Literal["running", "starting", "redis_unreachable", "draining", "stopped"]

_STATE_LABEL: dict[str, str] = {
    "running": "✓ Running",
    "starting": "… Starting",
    "redis_unreachable": "✗ Redis unreachable",
    "draining": "✗ Draining",
    "stopped": "✗ Stopped",
}


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, frozen=True
    )


class ComponentHealth(_Camel):
    """A part beside the consumers (status store, alert sink, ...) reporting on itself.

    ``ok`` False degrades the worker (reported, alerted) without failing its probes: job
    processing goes on without these parts.
    """

    name: str
    ok: bool
    detail: str = ""


@runtime_checkable
class HealthContributor(Protocol):
    """An extension that adds a component to the health report."""

    def health_component(self) -> ComponentHealth: ...


class QueueHealth(_Camel):
    name: str
    state: QueueState
    active_jobs: int
    processed_jobs: int
    failed_jobs: int
    concurrency: int
    redis_ok: bool
    fetched_once: bool


class WorkerHealth(_Camel):
    """The seed's `getHealth()` fields (uptime in ms, lastHeartbeat in ms since the epoch),
    plus what the probes decide on."""

    healthy: bool
    uptime: int = Field(description="ms since start")
    last_heartbeat: int | None = Field(description="ms since the epoch; None before the first")
    active_jobs: int
    processed_jobs: int
    failed_jobs: int
    queues: list[QueueHealth]
    worker_id: str
    live: bool = Field(description="the event loop heartbeats (what /livez reports)")
    ready: bool = Field(
        description="Redis reachable, fetched once, every loop running, not draining (/readyz)"
    )
    draining: bool
    components: list[ComponentHealth] = Field(default_factory=list)
    degraded: list[str] = Field(default_factory=list, description="why, when a component is not ok")


def heartbeat_of(worker: WorkerView) -> Heartbeat | None:
    for extension in worker.extensions:
        if isinstance(extension, Heartbeat):
            return extension
    return None


def _queue_state(*, started: bool, draining: bool, redis_ok: bool, fetched: bool) -> QueueState:
    if not started:
        return "stopped"
    if draining:
        return "draining"
    if not redis_ok:
        return "redis_unreachable"
    if not fetched:
        return "starting"
    return "running"


def readiness_problems(worker: WorkerView) -> list[str]:
    """Why the worker should not count as ready now (empty when it is)."""
    if worker.started_at is None:
        return ["not started"]
    if worker.draining:
        return ["draining"]
    problems = []
    for name, consumer in worker.consumers.items():
        # A loop that crashed is down until its supervisor restarts it (after a backoff).
        problems += [f"queue {name}: {loop} loop down" for loop in sorted(consumer.loops.down)]
        if not consumer.redis_ok:
            problems.append(f"queue {name}: Redis unreachable")
        elif not consumer.fetched_once:
            problems.append(f"queue {name}: no successful fetch yet")
    return problems


def startup_problems(worker: WorkerView) -> list[str]:
    """Why the worker has not finished starting (empty once it has): started, and every queue's
    first fetch has either succeeded or been found unable to (Redis unreachable, a loop down).

    The startup probe (/startupz, probed every second) passes then, and the kubelet probes
    readiness at once: a pod turns Ready as it starts taking jobs, not a readiness period later.
    """
    if worker.started_at is None:
        return ["not started"]
    return [
        f"queue {name}: first fetch pending"
        for name, c in worker.consumers.items()
        if c.redis_ok and not c.fetched_once and not c.loops.down and not worker.draining
    ]


def health_of(worker: WorkerView, *, now: float | None = None) -> WorkerHealth:
    """The worker's health now (``now``: wall-clock seconds, for tests)."""
    now = time.time() if now is None else now
    started = worker.started_at is not None
    heartbeat = heartbeat_of(worker)
    live = heartbeat.alive() if heartbeat is not None else True
    queues = [
        QueueHealth(
            name=name,
            state=_queue_state(
                started=started,
                draining=worker.draining,
                redis_ok=c.redis_ok,
                fetched=c.fetched_once,
            ),
            active_jobs=c.active,
            processed_jobs=c.processed,
            failed_jobs=c.failed,
            concurrency=c.concurrency,
            redis_ok=c.redis_ok,
            fetched_once=c.fetched_once,
        )
        for name, c in list(worker.consumers.items())
    ]
    components = [
        ext.health_component() for ext in worker.extensions if isinstance(ext, HealthContributor)
    ]
    components += [ComponentHealth(name="redis", ok=False, detail=w) for w in worker.redis_warnings]
    ready = not readiness_problems(worker)
    redis_ok = all(q.redis_ok for q in queues)
    last = heartbeat.last_beat if heartbeat is not None else None
    return WorkerHealth(
        healthy=started and live and redis_ok and not worker.draining,
        uptime=round((now - worker.started_at) * 1000) if worker.started_at else 0,
        last_heartbeat=round(last * 1000) if last is not None else None,
        active_jobs=sum(q.active_jobs for q in queues),
        processed_jobs=sum(q.processed_jobs for q in queues),
        failed_jobs=sum(q.failed_jobs for q in queues),
        queues=queues,
        worker_id=worker.id,
        live=live,
        ready=ready,
        draining=worker.draining,
        components=components,
        degraded=[f"{c.name}: {c.detail}" for c in components if not c.ok],
    )


def format_uptime(milliseconds: int) -> str:
    """``1h 23m 45s`` as in the seed; leading zero units are left out (``45s``, ``2m 0s``)."""
    seconds = max(0, milliseconds // 1000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    return " ".join([*(f"{n}{unit}" for n, unit in parts), f"{seconds}s"])


def render_report(health: WorkerHealth) -> str:
    """The seed's `getHealthReport()` text, line for line; a Warnings section only if degraded."""
    lines = [
        "=== Worker Health Report ===",
        f"Status: {'✓ HEALTHY' if health.healthy else '✗ UNHEALTHY'}",
        f"Uptime: {format_uptime(health.uptime)}",
        f"Active Jobs: {health.active_jobs}",
        f"Processed: {health.processed_jobs}",
        f"Failed: {health.failed_jobs}",
        "",
        "Queues:",
        *(f"  - {q.name}: {_STATE_LABEL[q.state]}" for q in health.queues),
    ]
    if health.degraded:
        lines += ["", "Warnings:", *(f"  - {reason}" for reason in health.degraded)]
    return "\n".join(lines)


def health_report(worker: WorkerView) -> str:
    return render_report(health_of(worker))
