"""Helpers for the observability integration tests: fast settings and probe/metrics clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from worker_runtime import QueueConfig, RetryPolicy, Worker, WorkerSettings
from worker_runtime.core.backoff import Backoff
from worker_runtime.observing.observability import Observability

#: Retry at once (no backoff), so failure paths finish quickly.
NO_WAIT = Backoff(type="fixed", delay_seconds=0, max_delay_seconds=0, jitter=False)


def retrying(attempts: int, **overrides: object) -> QueueConfig:
    return QueueConfig(retry=RetryPolicy(attempts=attempts, backoff=NO_WAIT), **overrides)  # type: ignore[arg-type]


def observed_settings(redis_url: str, tmp_path: Path, **overrides: object) -> WorkerSettings:
    """Everything on, with intervals short enough for tests; the probe port picked freely."""
    base: dict[str, object] = {
        "redis_url": redis_url,
        "lease_ms": 1000,
        "heartbeat_interval_seconds": 0.1,
        "liveness_missed_heartbeats": 3,
        "health_host": "127.0.0.1",
        "health_port": 0,
        "queue_metrics_interval_seconds": 0.1,
        "status_store_url": f"sqlite:///{tmp_path}/status.db",
        "status_store_flush_seconds": 0.05,
    }
    base.update(overrides)
    return WorkerSettings.model_validate(base)


@contextlib.asynccontextmanager
async def observed(
    worker: Worker, settings: WorkerSettings, *, grace: float = 5.0
) -> AsyncIterator[Observability]:
    """Install observability from ``settings`` on ``worker``, run it, drain it on exit."""
    obs = Observability.from_settings(settings)
    obs.install(worker)
    await worker.start()
    try:
        yield obs
    finally:
        await worker.stop(grace_seconds=grace)


async def get(obs: Observability, path: str) -> httpx.Response:
    assert obs.probes is not None
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(obs.probes.url + path)


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample's value from a Prometheus text scrape (None when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and (
                labels is None or all(s.labels.get(k) == v for k, v in labels.items())
            ):
                return float(s.value)
    return None
