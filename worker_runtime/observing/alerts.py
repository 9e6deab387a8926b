"""Alerts: dead-letter moves and health transitions, sent to pluggable sinks.

A sink's `send` is called on the job's hot path, so it only queues; delivery happens on the
sink's own task. The webhook sink POSTs JSON with retries, under a token bucket that also pays
for retries: however hard a failure storm hits, the receiver gets at most
``burst + rate × time`` requests, and what was held back arrives as one summary alert.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
import structlog
from pydantic import BaseModel, Field

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.observing.health import ComponentHealth, health_of

if TYPE_CHECKING:
    from worker_runtime.consuming.processor import Job
    from worker_runtime.consuming.worker import Worker

log = structlog.get_logger("shoal.alerts")

AlertKind = Literal[
    "job_dead_lettered", "jobs_stalled_out", "worker_unhealthy", "worker_recovered",
    "worker_degraded", "alerts_suppressed",
]  # fmt: skip


class Alert(BaseModel):
    """What a sink receives (and the webhook's JSON body)."""

    kind: AlertKind
    severity: Literal["critical", "warning", "info"]
    message: str
    worker_id: str | None = None
    queue: str | None = None
    job_id: str | None = None
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    details: dict[str, Any] = Field(default_factory=dict)


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None:
        """Queue an alert; never blocks, never raises."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LogSink:
    """Alerts as log lines (always on; the webhook sink is optional)."""

    def send(self, alert: Alert) -> None:
        level = {"critical": "error", "warning": "warning", "info": "info"}[alert.severity]
        getattr(log, level)(
            alert.message,
            alert=alert.kind,
            queue=alert.queue,
            job_id=alert.job_id,
            **alert.details,
        )

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; time is a parameter (pure, testable)."""

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class WebhookSink:
    """JSON POST per alert; retried on 5xx/429/connection errors; rate limited (see module)."""

    def __init__(
        self,
        url: str,
        *,
        max_per_minute: int = 10,
        burst: int | None = None,
        attempts: int = 3,
        timeout_seconds: float = 5.0,
        retry_delay_seconds: float = 0.5,
        max_queued: int = 1000,
    ) -> None:
        self.url = url
        self.bucket = TokenBucket(
            rate=max_per_minute / 60, burst=burst or max_per_minute, now=time.monotonic()
        )
        self.attempts = attempts
        self.timeout = timeout_seconds
        self.retry_delay = retry_delay_seconds
        self.max_queued = max_queued
        self.queue: collections.deque[Alert] = collections.deque()
        self.suppressed: Counter[str] = Counter()
        self.requests = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is queued, held back or in flight
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def send(self, alert: Alert) -> None:
        if len(self.queue) >= self.max_queued:
            self.suppressed[alert.kind] += 1
        else:
            self.queue.append(alert)
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="shoal-alert-webhook")

    async def close(self, *, flush_seconds: float = 5.0) -> None:
        """Deliver what the rate limit allows within ``flush_seconds``, then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(flush_seconds):
                    await self._idle.wait()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            if not self.queue and not self.suppressed:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            now = time.monotonic()
            if self.queue and self.bucket.take(now):
                await self._deliver(self.queue.popleft())
                reraise_if_cancelling()
            elif self.queue:
                # No budget: hold back the whole backlog; it is summarised when budget returns.
                while self.queue:
                    self.suppressed[self.queue.popleft().kind] += 1
            elif self.suppressed:
                wait = self.bucket.wait_time(now)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                self.bucket.take(time.monotonic())
                await self._deliver(self._summary())

    def _summary(self) -> Alert:
        counts, self.suppressed = dict(self.suppressed), Counter()
        total = sum(counts.values())
        return Alert(
            kind="alerts_suppressed",
            severity="warning",
            message=f"{total} alert(s) held back by the rate limit",
            details={"suppressed": counts},
        )

    async def _deliver(self, alert: Alert) -> None:
        assert self._client is not None
        body = alert.model_dump_json().encode()
        headers = {"Content-Type": "application/json"}
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                # A retry is a request too: it waits for, and spends, a token.
                await asyncio.sleep(max(self.retry_delay * 2 ** (attempt - 2),
                                        self.bucket.wait_time(time.monotonic())))  # fmt: skip
                if not self.bucket.take(time.monotonic()):
                    continue
            self.requests += 1
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                reraise_if_cancelling()
                self.last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                self.delivered += 1
                self.last_error = None
                return
            self.last_error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the receiver rejects this alert; retrying will not help
        self.failed += 1
        log.warning("alert not delivered", alert=alert.kind, error=self.last_error)

    def health_component(self) -> ComponentHealth:
        ok = self.last_error is None
        return ComponentHealth(name="alert_webhook", ok=ok, detail=self.last_error or "ok")


class Alerting(WorkerObserver):
    """Observer + extension: dead-letter moves as they happen, health transitions on a timer."""

    def __init__(
        self,
        sinks: list[AlertSink],
        *,
        check_interval_seconds: float = 30.0,
        include_payload: bool = False,
    ) -> None:
        self.sinks = sinks
        self.check_interval = check_interval_seconds
        self.include_payload = include_payload
        self.worker_id: str | None = None
        self._healthy = True
        self._degraded: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None

    def emit(self, alert: Alert) -> None:
        if alert.worker_id is None:
            alert = alert.model_copy(update={"worker_id": self.worker_id})
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:  # a broken sink must never fail a job
                log.exception("alert sink failed", sink=type(sink).__name__)

    def job_failed(
        self,
        job: Job[Any],
        *,
        duration: float,
        error: str,
        error_type: str,
        traceback: str,
        outcome: str,
        retry_delay_ms: int,
    ) -> None:
        if outcome != "dead":
            return
        details: dict[str, Any] = {"error": error, "error_type": error_type, "attempt": job.attempt}
        if self.include_payload:
            details["payload"] = job.raw
        self.emit(
            Alert(
                kind="job_dead_lettered",
                severity="critical",
                message=f"job {job.id} on queue {job.queue} moved to dead letter: {error}",
                queue=job.queue,
                job_id=job.id,
                details=details,
            )
        )

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        if failed:
            self.emit(
                Alert(
                    kind="jobs_stalled_out",
                    severity="critical",
                    message=f"{len(failed)} job(s) on queue {queue} stalled too often and failed",
                    queue=queue,
                    details={"job_ids": failed[:100]},
                )
            )

    async def start(self, worker: Worker) -> None:
        self.worker_id = worker.id
        for sink in self.sinks:
            await sink.start()
        self._task = asyncio.create_task(self._watch(worker), name="shoal-alert-health")

    async def stop(self, worker: Worker) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sink in self.sinks:
            await sink.close()

    async def _watch(self, worker: Worker) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            self.check(worker)

    def check(self, worker: Worker) -> None:
        """Compare health with the last check and alert on each transition."""
        if worker.draining:
            return  # shutting down is not an incident
        health = health_of(worker)
        if health.healthy != self._healthy:
            self._healthy = health.healthy
            problems = [q.name + ": " + q.state for q in health.queues if q.state != "running"]
            if not health.live:
                problems.insert(0, "event loop not heartbeating")
            self.emit(
                Alert(
                    kind="worker_recovered" if health.healthy else "worker_unhealthy",
                    severity="info" if health.healthy else "critical",
                    message="worker healthy again"
                    if health.healthy
                    else "worker unhealthy: " + "; ".join(problems),
                    details={"problems": problems},
                )
            )
        degraded = frozenset(health.degraded)
        if degraded - self._degraded:
            self.emit(
                Alert(
                    kind="worker_degraded",
                    severity="warning",
                    message="worker degraded: " + "; ".join(sorted(degraded)),
                    details={"degraded": sorted(degraded)},
                )
            )
        self._degraded = degraded
