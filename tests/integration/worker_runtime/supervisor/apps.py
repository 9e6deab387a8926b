"""The worker app `shoal up` runs in these tests: records every execution in Redis.

``test:started`` and ``test:exec`` (job id -> times) and ``test:pod`` (job id -> the worker's
POD_NAME) tell from outside the processes whether
every job ran once and finished (started == finished: no worker stopped mid-job). The Worker
writes heartbeats (POD_NAME, in-flight) as the supervisor expects.
"""

from __future__ import annotations

import asyncio
import os

from tests.integration.worker_runtime.apps import Sleep, client
from worker_runtime import Job, Processor, WorkerSettings
from worker_runtime.consuming.worker import Worker
from worker_runtime.observing.heartbeat import Heartbeat

QUEUE = "uprec"


class Recording(Processor[Sleep]):
    queue = QUEUE  # no QueueConfig of its own: the pool's concurrency and timeout apply

    async def process(self, job: Job[Sleep]) -> None:
        redis = await client()
        await redis.hincrby("test:started", job.id, 1)
        await redis.hset("test:pod", job.id, os.environ.get("POD_NAME", ""))
        await asyncio.sleep(job.data.ms / 1000)
        await redis.hincrby("test:exec", job.id, 1)


_settings = WorkerSettings()
worker = Worker(
    settings=_settings,
    extensions=[Heartbeat(interval_seconds=_settings.heartbeat_interval_seconds)],
)
worker.register(Recording())
