"""/metrics on a real worker: values match the jobs run; queue gauges cost no Redis per scrape."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.observed import (
    get,
    observed,
    observed_settings,
    retrying,
    sample,
)
from worker_runtime import Job, JobSpec, Queue, Worker

pytestmark = pytest.mark.integration


class Work(BaseModel):
    fail: bool = False


async def test_metrics_match_the_jobs_run(redis_url: str, tmp_path: Path) -> None:
    settings = observed_settings(redis_url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings)

    @worker.processor("metered", config=retrying(2))
    async def handle(job: Job[Work]) -> None:
        if job.data.fail:
            raise ValueError("boom")

    async with observed(worker, settings) as obs, Queue("metered", redis_url=redis_url) as q:
        await q.enqueue_many([{"fail": False}] * 20 + [{"fail": True}] * 3)

        async def settled() -> str | None:
            text = (await get(obs, "/metrics")).text
            done = sample(text, "queue_completed_jobs", {"queue": "metered"}) == 20
            dead = sample(text, "queue_dead_jobs", {"queue": "metered"}) == 3
            return text if done and dead else None

        text = await eventually(settled, description="queue gauges: 20 completed, 3 dead")

    q_ = {"queue": "metered"}
    assert sample(text, "worker_completed_jobs_total", q_) == 20
    assert sample(text, "worker_failed_jobs_total", q_) == 6  # 3 jobs x 2 attempts
    assert sample(text, "worker_retried_jobs_total", q_) == 3
    assert sample(text, "worker_dead_lettered_jobs_total", q_) == 3
    assert sample(text, "worker_job_duration_seconds_count", q_) == 26
    assert sample(text, "worker_job_duration_seconds_bucket", {**q_, "le": "+Inf"}) == 26
    assert sample(text, "worker_active_jobs", q_) == 0
    assert sample(text, "queue_waiting_jobs", q_) == 0
    assert sample(text, "queue_active_jobs", q_) == 0
    assert sample(text, "queue_failed_jobs", q_) == 3
    assert sample(text, "worker_live") == 1
    assert sample(text, "worker_ready") == 1
    assert (sample(text, "worker_last_heartbeat_timestamp_seconds") or 0) > 0


async def test_active_jobs_gauge_counts_running_jobs(redis_url: str, tmp_path: Path) -> None:
    settings = observed_settings(redis_url, tmp_path, status_store_enabled=False)
    worker = Worker(settings=settings, concurrency=4)
    release = asyncio.Event()

    @worker.processor("busy")
    async def handle(job: Job[Any]) -> None:
        await release.wait()

    async with observed(worker, settings) as obs, Queue("busy", redis_url=redis_url) as q:
        await q.enqueue_many([{}] * 6)

        async def four_running() -> bool:
            text = (await get(obs, "/metrics")).text
            return sample(text, "worker_active_jobs", {"queue": "busy"}) == 4

        await eventually(four_running, description="worker_active_jobs == 4")
        release.set()


async def test_scrapes_serve_the_last_read_and_never_read_redis(
    redis_url: str, tmp_path: Path
) -> None:
    settings = observed_settings(
        redis_url, tmp_path, status_store_enabled=False, queue_metrics_interval_seconds=3600
    )
    worker = Worker(settings=settings)

    @worker.processor("scraped")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs, Queue("scraped", redis_url=redis_url) as q:
        assert obs.metrics is not None

        async def first_read() -> bool:
            text = (await get(obs, "/metrics")).text
            return sample(text, "queue_delayed_jobs", {"queue": "scraped"}) == 0

        await eventually(first_read, description="the first queue gauge read")
        await q.enqueue_many([JobSpec(data={}, delay_seconds=3600) for _ in range(5)])
        for _ in range(10):  # scrapes serve the value read at start, whatever Redis holds now
            text = (await get(obs, "/metrics")).text
            assert sample(text, "queue_delayed_jobs", {"queue": "scraped"}) == 0
        await obs.metrics.refresh_queue_gauges()  # what the next interval does
        text = (await get(obs, "/metrics")).text
        assert sample(text, "queue_delayed_jobs", {"queue": "scraped"}) == 5
