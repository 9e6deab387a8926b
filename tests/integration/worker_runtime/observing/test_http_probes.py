"""/livez, /readyz, /startupz, /healthz against real failures: Redis stopped and restarted, a
blocked event loop, a draining worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.harness.waiting import wait_until
from tests.integration.worker_runtime.observed import get, observed, observed_settings, sample
from worker_runtime import Job, Queue, Worker
from worker_runtime.observing.health import health_of, health_report

pytestmark = pytest.mark.integration


async def _status(obs: Any, path: str, code: int) -> bool:
    return (await get(obs, path)).status_code == code


async def test_readyz_follows_redis_going_away_and_coming_back(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    settings = observed_settings(own_redis.url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings)

    @worker.processor("probes")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs:
        await eventually(lambda: _status(obs, "/readyz", 200), description="ready")
        assert (await get(obs, "/startupz")).status_code == 200
        await asyncio.to_thread(own_redis.stop)
        await eventually(lambda: _status(obs, "/readyz", 503), description="not ready")
        body = (await get(obs, "/readyz")).text
        assert "probes: Redis unreachable" in body
        assert (await get(obs, "/livez")).status_code == 200  # the loop is fine
        health = (await get(obs, "/healthz")).json()
        assert health["healthy"] is False
        assert health["queues"][0]["state"] == "redis_unreachable"
        metrics = (await get(obs, "/metrics")).text
        assert (sample(metrics, "worker_redis_errors_total", {"queue": "probes"}) or 0) >= 1
        assert sample(metrics, "worker_ready") == 0

        await asyncio.to_thread(own_redis.start)
        await eventually(
            lambda: _status(obs, "/readyz", 200), timeout=15, description="ready again"
        )
        assert (await get(obs, "/healthz")).json()["healthy"] is True


async def test_not_ready_before_the_first_successful_fetch(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    await asyncio.to_thread(own_redis.stop)  # the worker starts while Redis is down
    settings = observed_settings(own_redis.url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings)

    @worker.processor("probes")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs:
        response = await get(obs, "/readyz")
        assert response.status_code == 503
        assert "probes:" in response.text
        assert (await get(obs, "/livez")).status_code == 200
        # Starting is over once the first fetch is known to fail: the kubelet moves on to the
        # readiness (503, why) and liveness probes instead of restarting the pod later.
        await eventually(lambda: _status(obs, "/startupz", 200), description="started")
        await asyncio.to_thread(own_redis.start)
        await eventually(lambda: _status(obs, "/readyz", 200), timeout=15, description="ready")
        assert worker.consumers["probes"].fetched_once


async def test_livez_fails_while_a_processor_blocks_the_event_loop(
    redis_url: str, tmp_path: Path
) -> None:
    # The lease outlasts the block: this test is about liveness, not about stalled jobs.
    settings = observed_settings(redis_url, tmp_path, status_store_enabled=False, lease_ms=5000)
    worker = Worker(settings=settings)

    @worker.processor("blocking")
    async def handle(job: Job[Any]) -> None:
        time.sleep(2.0)  # noqa: ASYNC251  the bug under test: a blocked loop (limit 3 x 0.1 s)

    async with observed(worker, settings) as obs, Queue("blocking", redis_url=redis_url) as q:
        await eventually(lambda: _status(obs, "/livez", 200), description="live")
        assert obs.probes is not None
        url = obs.probes.url

        def probe_from_outside() -> tuple[str, dict[str, Any]]:
            # Runs on a thread: the test's own loop is blocked along with the worker's.
            # Both answers from one moment of the block (it ends, and the loop heartbeats
            # again, 2 s after it began).
            def both() -> tuple[str, dict[str, Any]] | None:
                live = httpx.get(url + "/livez")
                health = httpx.get(url + "/healthz").json()
                if live.status_code == 503 and health["live"] is False:
                    return live.text, health
                return None

            found: tuple[str, dict[str, Any]] = wait_until(
                both, timeout=10, interval=0.02, description="/livez 503 and not live"
            )
            return found

        watcher = asyncio.get_running_loop().run_in_executor(None, probe_from_outside)
        await q.enqueue({})
        text, health = await watcher
        assert "event loop has not heartbeated" in text
        assert health["live"] is False
        assert health["healthy"] is False
        await eventually(lambda: _status(obs, "/livez", 200), description="live again")


async def test_readyz_fails_while_draining(redis_url: str, tmp_path: Path) -> None:
    settings = observed_settings(redis_url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings)
    release = asyncio.Event()

    @worker.processor("drain")
    async def handle(job: Job[Any]) -> None:
        await release.wait()

    obs_ctx = observed(worker, settings)
    obs = await obs_ctx.__aenter__()
    assert obs.probes is not None
    url = obs.probes.url
    async with Queue("drain", redis_url=redis_url) as q:
        await q.enqueue({})
        await eventually(lambda: _async(worker.active == 1), description="job running")
        await eventually(lambda: _status(obs, "/readyz", 200), description="ready")
        stopping = asyncio.create_task(worker.stop(grace_seconds=10))
        await eventually(lambda: _status(obs, "/readyz", 503), description="not ready")
        assert "draining" in (await get(obs, "/readyz")).text
        assert (await get(obs, "/livez")).status_code == 200
        release.set()
        await stopping
        assert (await q.counts())["completed"] == 1
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(url + "/livez")  # the probe server stopped with the worker


async def _async(value: bool) -> bool:
    return value


async def test_healthz_carries_the_seed_fields_and_the_report_renders(
    redis_url: str, tmp_path: Path
) -> None:
    settings = observed_settings(redis_url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings)

    @worker.processor("report")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs, Queue("report", redis_url=redis_url) as q:
        await q.enqueue_many([{} for _ in range(3)])
        await eventually(lambda: _async(worker.processed == 3), description="3 processed")
        data = (await get(obs, "/healthz")).json()
        assert data["healthy"] is True
        assert data["processedJobs"] == 3
        assert data["failedJobs"] == 0
        assert data["activeJobs"] == 0
        assert data["uptime"] >= 0
        assert abs(data["lastHeartbeat"] / 1000 - time.time()) < 5
        assert data["queues"][0] == {
            "name": "report",
            "state": "running",
            "activeJobs": 0,
            "processedJobs": 3,
            "failedJobs": 0,
            "concurrency": 5,
            "redisOk": True,
            "fetchedOnce": True,
        }
        assert health_of(worker).processed_jobs == 3
        report = health_report(worker)
        assert report.startswith("=== Worker Health Report ===\nStatus: ✓ HEALTHY\nUptime: ")
        assert "Processed: 3\nFailed: 0\n\nQueues:\n  - report: ✓ Running" in report
        assert (await get(obs, "/nope")).status_code == 404
