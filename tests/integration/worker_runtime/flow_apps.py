"""Processors for the flow-control tests with worker subprocesses
(`shoal worker tests.integration.worker_runtime.flow_apps:app`).

The queue-wide rate limit of ``limited`` comes from the environment (WORKER_RATE_LIMIT, as the
operator sets it); the other queues opt out explicitly (an explicit field wins).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.worker_runtime.apps import client
from worker_runtime import Job, Processor, QueueConfig, RetryPolicy
from worker_runtime.core.cron_schedule import CronJob
from worker_runtime.producing.flows import children_failures, children_results
from worker_runtime.rate_limit import GroupRateLimit

KEEP_ALL = -1
#: Per-tenant limit of the ``tenants`` queue.
TENANT_LIMIT = 4


class Limited(Processor[Any]):
    queue = "limited"
    config = QueueConfig(concurrency=20, keep_completed=KEEP_ALL)

    async def process(self, job: Job[Any]) -> None:
        pass


class Tenants(Processor[Any]):
    queue = "tenants"
    config = QueueConfig(
        concurrency=20,
        keep_completed=KEEP_ALL,
        rate_limit=None,
        group_rate_limit=GroupRateLimit(key="tenant", max=TENANT_LIMIT, per_seconds=1),
    )

    async def process(self, job: Job[Any]) -> None:
        pass


class Ticks(Processor[Any]):
    queue = "ticks"
    config = QueueConfig(
        keep_completed=KEEP_ALL,
        rate_limit=None,
        cron=(CronJob(name="every-second", schedule="* * * * * *", data={"k": "tick"}),),
    )

    async def process(self, job: Job[Any]) -> None:
        await (await client()).hincrby("test:ticks", job.id, 1)


class Flows(Processor[Any]):
    """Children return ``n``; a parent returns the sum of its children's results."""

    queue = "flow"
    config = QueueConfig(
        concurrency=20, keep_completed=KEEP_ALL, rate_limit=None, retry=RetryPolicy(attempts=1)
    )

    async def process(self, job: Job[Any]) -> dict[str, Any]:
        if job.data.get("parent"):
            results = await children_results(job)
            failures = await children_failures(job)
            return {
                "sum": sum(r["n"] for r in results.values()),
                "children": len(results),
                "failed": sorted(failures),
            }
        if job.data.get("fail"):
            raise RuntimeError(f"child {job.data['n']} failed")
        return {"n": job.data["n"]}


class Sleepy(Processor[Any]):
    """Sleeps ``ms``; records its start and whether its task was cancelled."""

    queue = "sleepy"
    config = QueueConfig(concurrency=10, rate_limit=None)

    async def process(self, job: Job[Any]) -> None:
        redis = await client()
        await redis.hincrby("test:started", job.id, 1)
        try:
            await asyncio.sleep(job.data["ms"] / 1000)
        except asyncio.CancelledError:
            await redis.hincrby("test:cancelled", job.id, 1)
            raise
        await redis.hincrby("test:exec", job.id, 1)


class Ordered(Processor[Any]):
    """Few slots and a little work per job, so a backlog takes many fetches."""

    queue = "ordered"
    config = QueueConfig(concurrency=2, keep_completed=KEEP_ALL, rate_limit=None)

    async def process(self, job: Job[Any]) -> None:
        await asyncio.sleep(0.005)


class Later(Processor[Any]):
    queue = "later"
    config = QueueConfig(concurrency=10, keep_completed=KEEP_ALL, rate_limit=None)

    async def process(self, job: Job[Any]) -> None:
        pass


app = [Limited(), Tenants(), Ticks(), Flows(), Sleepy(), Ordered(), Later()]
