"""`Observability.from_settings`: everything on in one call, each part switchable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.observed import get, observed, observed_settings, sample
from worker_runtime import Job, Queue, Worker, WorkerSettings
from worker_runtime.observing.alerts import WebhookSink
from worker_runtime.observing.heartbeat import Heartbeat
from worker_runtime.observing.http import ProbeServer
from worker_runtime.observing.observability import Observability, ObserverGroup
from worker_runtime.observing.status_store import StatusStore

pytestmark = pytest.mark.integration


async def test_everything_on_from_settings(redis_url: str, tmp_path: Path) -> None:
    settings = observed_settings(redis_url, tmp_path, status_owner_field="customer")
    worker = Worker(settings=settings)

    @worker.processor("wired")
    async def handle(job: Job[Any]) -> str:
        return "done"

    async with observed(worker, settings) as obs, Queue("wired", redis_url=redis_url) as q:
        await q.enqueue_many([{"customer": "c-1"}] * 5)
        assert obs.status is not None
        reader = StatusStore(settings.status_store_url)
        try:

            async def rows() -> bool:
                return await reader.counts() == {"completed": 5}

            await eventually(rows, description="5 status rows")
            (row, *_) = await reader.find(owner_id="c-1")
            assert row.result_summary == "done"
        finally:
            await reader.close()
        health = (await get(obs, "/healthz")).json()
        assert {c["name"]: c["ok"] for c in health["components"]} == {"status_store": True}
        text = (await get(obs, "/metrics")).text
        assert sample(text, "status_store_up") == 1
        assert sample(text, "status_store_written_records_total") == 5
        assert sample(text, "worker_completed_jobs_total", {"queue": "wired"}) == 5


def test_parts_follow_their_settings(tmp_path: Path) -> None:
    off = WorkerSettings.model_validate(
        {
            "health_checks_enabled": False,
            "metrics_enabled": False,
            "status_store_enabled": False,
        }
    )
    obs = Observability.from_settings(off, job_logs=False)
    assert (obs.metrics, obs.status, obs.probes, obs.job_logs) == (None, None, None, None)
    assert [type(e) for e in obs.extensions] == [Heartbeat, type(obs.alerting)]

    on = WorkerSettings.model_validate(
        {
            "status_store_url": f"sqlite:///{tmp_path}/s.db",
            "alert_webhook_url": "http://127.0.0.1:9/hook",
            "heartbeat_interval_seconds": 7,
        }
    )
    obs = Observability.from_settings(on)
    assert obs.heartbeat.interval == 7
    assert isinstance(obs.probes, ProbeServer)
    assert obs.probes.requested_port == 9091
    assert obs.probes.registry is obs.metrics.registry  # type: ignore[union-attr]
    assert obs.alerting is not None
    assert any(isinstance(s, WebhookSink) for s in obs.alerting.sinks)
    (group,) = obs.observers
    assert isinstance(group, ObserverGroup)
    assert group.members == [obs.metrics, obs.status, obs.alerting, obs.job_logs]
    # each hook calls only the parts that implement it
    assert group.redis_recovered == obs.job_logs.redis_recovered  # type: ignore[union-attr]
    assert group.job_started == obs.job_logs.job_started  # type: ignore[union-attr]


async def test_metrics_endpoint_says_so_when_disabled(redis_url: str, tmp_path: Path) -> None:
    settings = observed_settings(
        redis_url, tmp_path, metrics_enabled=False, status_store_enabled=False
    )
    worker = Worker(settings=settings)

    @worker.processor("plain")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs:
        response = await get(obs, "/metrics")
        assert response.status_code == 404
        assert response.text == "metrics disabled\n"
