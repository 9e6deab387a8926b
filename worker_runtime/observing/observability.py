"""Everything observable about a worker, wired from settings in one call.

>>> obs = Observability.from_settings(settings)
>>> worker = Worker(settings=settings, observers=obs.observers, extensions=obs.extensions)
>>> # or, for a worker built elsewhere (before it starts):  obs.install(worker)

Parts, each switchable by its setting: the heartbeat (always), the probe server
(ENABLE_HEALTH_CHECKS, HEALTH_PORT), Prometheus metrics (METRICS_ENABLED), job log lines,
the SQL status store (STATUS_STORE_ENABLED, STATUS_STORE_URL) and alerts (log sink always,
webhook with ALERT_WEBHOOK_URL).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from worker_runtime.config import WorkerSettings
from worker_runtime.consuming.observers import WorkerObserver, observer_failed, takes
from worker_runtime.observing.alerts import Alerting, AlertSink, LogSink, WebhookSink
from worker_runtime.observing.health import ComponentHealth
from worker_runtime.observing.heartbeat import Heartbeat
from worker_runtime.observing.http import ProbeServer
from worker_runtime.observing.logs import JobLogObserver
from worker_runtime.observing.metrics import WorkerMetrics
from worker_runtime.observing.status_store import StatusRecorder, StatusStore
from worker_runtime.observing.status_store.retention import Retention

if TYPE_CHECKING:
    from worker_runtime.consuming.worker import Worker, WorkerExtension


@dataclass
class Observability:
    heartbeat: Heartbeat
    metrics: WorkerMetrics | None = None
    probes: ProbeServer | None = None
    status: StatusRecorder | None = None
    alerting: Alerting | None = None
    job_logs: JobLogObserver | None = None
    observers: list[WorkerObserver] = field(default_factory=list)
    extensions: list[WorkerExtension] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: WorkerSettings, *, job_logs: bool = True) -> Observability:
        """Build the parts the settings enable (``job_logs=False``: no per-job log lines)."""
        heartbeat = Heartbeat(
            interval_seconds=settings.heartbeat_interval_seconds,
            missed_for_dead=settings.liveness_missed_heartbeats,
        )
        obs = cls(heartbeat=heartbeat)
        if settings.metrics_enabled:
            obs.metrics = WorkerMetrics(
                queue_interval_seconds=settings.queue_metrics_interval_seconds
            )
        if settings.status_store_enabled:
            obs.status = StatusRecorder(
                StatusStore(settings.status_store_url),
                owner_field=settings.status_owner_field,
                dead_letters=settings.status_store_dead_letters,
                flush_seconds=settings.status_store_flush_seconds,
                max_buffered=settings.status_store_buffer_max,
                retention=Retention(
                    max_age_seconds=settings.status_store_retention_seconds,
                    max_rows=settings.status_store_max_rows,
                    interval_seconds=settings.status_store_prune_seconds,
                ),
            )
        sinks: list[AlertSink] = [LogSink()]
        if settings.alert_webhook_url:
            sinks.append(
                WebhookSink(
                    settings.alert_webhook_url, max_per_minute=settings.alert_max_per_minute
                )
            )
        obs.alerting = Alerting(
            sinks,
            check_interval_seconds=settings.heartbeat_interval_seconds,
            include_payload=settings.log_job_payloads,
        )
        if job_logs:
            obs.job_logs = JobLogObserver(log_payloads=settings.log_job_payloads)
        if settings.health_checks_enabled:
            obs.probes = ProbeServer(
                host=settings.health_host,
                port=settings.health_port,
                registry=obs.metrics.registry if obs.metrics is not None else None,
                any_port_if_busy=default_probe_port(settings),
            )
        parts_observing = [
            o for o in (obs.metrics, obs.status, obs.alerting, obs.job_logs) if o is not None
        ]
        obs.observers = [ObserverGroup(parts_observing)]
        # Start order: the store migrates first; the probe server last, so it never reports
        # on parts that are not running. Stop runs in reverse: probes go first, the store
        # flushes last, after the consumers drained.
        parts: list[WorkerExtension | None] = [
            obs.status, heartbeat, obs.metrics, obs.alerting, obs.probes,
        ]  # fmt: skip
        obs.extensions = [p for p in parts if p is not None]
        for sink in sinks:
            if isinstance(sink, WebhookSink):
                obs.extensions.insert(0, _SinkHealth(sink))
        return obs

    def install(self, worker: Worker) -> Worker:
        """Attach to a worker that has not started yet."""
        if worker.started_at is not None:
            raise RuntimeError("install observability before the worker starts")
        worker.observers.extend(self.observers)
        worker.extensions.extend(self.extensions)
        if self.job_logs is not None:
            self.job_logs.bind_worker(worker.id)
        return worker


def default_probe_port(settings: WorkerSettings) -> bool:
    """True when HEALTH_PORT was not set and the worker runs outside Kubernetes (where the
    kubelet probes a fixed port): then a busy default port gives way to a free one."""
    explicit = "health_port" in settings.model_fields_set
    return not explicit and "KUBERNETES_SERVICE_HOST" not in os.environ


#: The hooks of `WorkerObserver` (what `ObserverGroup` dispatches), read from the class so a
#: hook added there is dispatched too.
HOOKS = tuple(
    name for name, value in vars(WorkerObserver).items() if callable(value) and name[0] != "_"
)


class ObserverGroup(WorkerObserver):
    """Several observers as one, calling for each hook only those that implement it.

    Most of ours implement two or three hooks. Each hook here is an instance attribute: the
    one implementation itself when there is one (no extra call at all), a loop when several,
    the base no-op when none. Ours take completions per batch (`jobs_completed`); a worker
    whose observers take no `job_completed` keeps no per-job context for it (`takes`).
    """

    def __init__(self, observers: Sequence[WorkerObserver]) -> None:
        self.members = list(observers)
        for hook in HOOKS:
            handlers = [getattr(o, hook) for o in self.members if takes(o, hook)]
            if len(handlers) == 1:
                setattr(self, hook, handlers[0])
            elif handlers:
                setattr(self, hook, _fan_out(hook, tuple(handlers)))


def _fan_out(hook: str, handlers: tuple[Callable[..., None], ...]) -> Callable[..., None]:
    """Call each handler; one that raises is logged and the others still run."""

    def call_all(*args: Any, **kwargs: Any) -> None:
        for handler in handlers:
            try:
                handler(*args, **kwargs)
            except Exception:
                observer_failed(getattr(handler, "__self__", handler), hook)

    return call_all


class _SinkHealth:
    """Puts a webhook sink's delivery state into the worker's health (it has no lifecycle of
    its own here: `Alerting` starts and closes its sinks)."""

    def __init__(self, sink: WebhookSink) -> None:
        self.sink = sink

    async def start(self, worker: Worker) -> None:
        pass

    async def stop(self, worker: Worker) -> None:
        pass

    def health_component(self) -> ComponentHealth:
        return self.sink.health_component()
