"""Prometheus metrics with the seed's names, labelled by queue, in a registry per worker.

Cost per job is one histogram observation (`HotHistogram`, lock-free on the loop thread).
Counts the consumers already keep (active, completed, failed) are read at scrape time by a
collector instead of being counted twice, and
the queue gauges come from one pipelined Redis read per interval (never per scrape), so a
scrape does no I/O and a hundred pods scraped every 5 s cost Redis nothing extra.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import Completion, WorkerObserver
from worker_runtime.core.keys import QueueKeys
from worker_runtime.observing.health import heartbeat_of, readiness_problems
from worker_runtime.observing.histogram import HotHistogram
from worker_runtime.redis_io.connection import CONNECTION_ERRORS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from worker_runtime.consuming.processor import Job
    from worker_runtime.consuming.worker import Worker

#: Job durations range from milliseconds to the 5-minute default timeout and beyond.
DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0, 1800.0,
)  # fmt: skip

QUEUE_GAUGES = ("waiting", "active", "delayed", "completed", "failed", "dead")


@runtime_checkable
class MetricsContributor(Protocol):
    """An extension that adds metrics at scrape time (e.g. the status store's buffer)."""

    def collect_metrics(self) -> Iterable[Metric]: ...


class WorkerMetrics(WorkerObserver):
    """Observer and extension: job metrics on the hot path, queue gauges on a timer."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        queue_interval_seconds: float = 15.0,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.queue_interval = queue_interval_seconds
        r = self.registry
        self.duration = HotHistogram(
            "worker_job_duration_seconds",
            "Processing time of job attempts (successful or not)",
            "queue",
            DURATION_BUCKETS,
        )
        r.register(self.duration)
        self.retried = Counter(
            "worker_retried_jobs", "Failed attempts scheduled for retry", ["queue"], registry=r
        )
        self.dead_lettered = Counter(
            "worker_dead_lettered_jobs",
            "Jobs moved to the dead-letter store by this worker",
            ["queue"],
            registry=r,
        )
        self.stalled = Counter(
            "worker_stalled_jobs",
            "Jobs found stalled (their worker stopped renewing the lease) and reclaimed",
            ["queue", "outcome"],
            registry=r,
        )
        self.released = Counter(
            "worker_released_jobs", "Jobs handed back unfinished at shutdown", ["queue"], registry=r
        )
        self.redis_errors = Counter(
            "worker_redis_errors",
            "Redis calls that failed to connect",
            ["queue", "operation"],
            registry=r,
        )
        self.script_errors = Counter(
            "worker_script_errors",
            "Lua script calls that failed while running (Redis answered: not an outage)",
            ["queue", "operation"],
            registry=r,
        )
        self.loop_crashes = Counter(
            "worker_loop_crashes",
            "Background loops (fetch, lease, reclaim, cron) that raised and were restarted",
            ["queue", "loop"],
            registry=r,
        )
        self.queue_gauges = {
            state: Gauge(f"queue_{state}_jobs", _QUEUE_HELP[state], ["queue"], registry=r)
            for state in QUEUE_GAUGES
        }
        self.queue_read_errors = Counter(
            "queue_metrics_read_errors", "Failed reads of the queue gauges", registry=r
        )
        self.worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None

    # --- hot path --------------------------------------------------------------------------

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        self.duration.observe_many(queue, [duration for _, duration, _ in completions])

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
        self.duration.observe(job.queue, duration)
        if outcome == "retry":
            self.retried.labels(job.queue).inc()
        elif outcome == "dead":
            self.dead_lettered.labels(job.queue).inc()

    def job_released(self, job: Job[Any]) -> None:
        self.released.labels(job.queue).inc()

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        if requeued:
            self.stalled.labels(queue, "requeued").inc(len(requeued))
        if failed:
            self.stalled.labels(queue, "failed").inc(len(failed))

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.redis_errors.labels(queue, operation).inc()

    def script_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.script_errors.labels(queue, operation).inc()

    def loop_crashed(
        self, queue: str, *, loop: str, error: BaseException, restart_in: float
    ) -> None:
        self.loop_crashes.labels(queue, loop).inc()

    # --- extension -------------------------------------------------------------------------

    async def start(self, worker: Worker) -> None:
        self.worker = worker
        self.registry.register(_WorkerCollector(worker))
        for name in worker.consumers:
            self.duration.add_label(name)
        self._task = asyncio.create_task(self._refresh_loop(), name="shoal-queue-metrics")

    async def stop(self, worker: Worker) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_loop(self) -> None:
        while True:
            await self.refresh_queue_gauges()
            reraise_if_cancelling()  # a cancel swallowed inside redis-py still stops us
            await asyncio.sleep(self.queue_interval)

    async def refresh_queue_gauges(self) -> None:
        """One pipelined round trip for all the worker's queues."""
        worker = self.worker
        if worker is None or worker.redis is None or not worker.consumers:
            return
        names = list(worker.consumers)
        try:
            async with worker.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    k = QueueKeys(name, worker.settings.key_prefix)
                    pipe.llen(k.wait)
                    pipe.zcard(k.active)
                    pipe.zcard(k.delayed)
                    pipe.hmget(k.stats, ["completed", "failed"])
                    pipe.zcard(k.dead)
                replies = await pipe.execute()
        except CONNECTION_ERRORS:
            reraise_if_cancelling()
            self.queue_read_errors.inc()
            return
        for i, name in enumerate(names):
            waiting, active, delayed, (completed, failed), dead = replies[5 * i : 5 * i + 5]
            values = {
                "waiting": waiting,
                "active": active,
                "delayed": delayed,
                "completed": int(completed or 0),
                "failed": int(failed or 0),
                "dead": dead,
            }
            for state, value in values.items():
                self.queue_gauges[state].labels(name).set(value)


_QUEUE_HELP = {
    "waiting": "Jobs ready to run, per queue (read every QUEUE_METRICS_INTERVAL)",
    "active": "Jobs leased by any worker, per queue",
    "delayed": "Jobs scheduled or waiting for a retry backoff, per queue",
    "completed": "Jobs completed since the queue began, per queue (all workers)",
    "failed": "Jobs finally failed since the queue began, per queue (all workers)",
    "dead": "Jobs in the dead-letter store, per queue",
}


class _WorkerCollector(Collector):
    """Reads the consumers' own counters at scrape time (on the probe server's thread)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def describe(self) -> list[Metric]:
        return []  # unchecked: the values exist only once the worker runs

    def collect(self) -> Iterator[Metric]:
        worker = self.worker
        consumers = list(worker.consumers.items())
        active = GaugeMetricFamily(
            "worker_active_jobs", "Jobs this worker is running now", labels=["queue"]
        )
        completed = CounterMetricFamily(
            "worker_completed_jobs", "Jobs this worker completed", labels=["queue"]
        )
        failed = CounterMetricFamily(
            "worker_failed_jobs", "Job attempts that failed on this worker", labels=["queue"]
        )
        for name, consumer in consumers:
            active.add_metric([name], consumer.active)
            completed.add_metric([name], consumer.processed)
            failed.add_metric([name], consumer.failed)
        yield from (active, completed, failed)
        heartbeat = heartbeat_of(worker)
        live = heartbeat.alive() if heartbeat is not None else True
        yield GaugeMetricFamily("worker_live", "1 while the event loop heartbeats", value=live)
        yield GaugeMetricFamily(
            "worker_ready", "1 while the worker is ready", value=not readiness_problems(worker)
        )
        if heartbeat is not None and heartbeat.last_beat is not None:
            yield GaugeMetricFamily(
                "worker_last_heartbeat_timestamp_seconds",
                "Time of the event loop's last heartbeat",
                value=heartbeat.last_beat,
            )
        for extension in worker.extensions:
            if isinstance(extension, MetricsContributor):
                yield from extension.collect_metrics()
