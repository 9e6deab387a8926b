"""Processors run by worker subprocesses in tests (`shoal worker tests.integration...:app`).

Each execution is recorded in Redis (``test:exec`` hash: job id -> times run) so a test can
prove at-least-once delivery from outside the worker process.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis
from pydantic import BaseModel

from worker_runtime import Job, Processor, QueueConfig
from worker_runtime.redis_io.connection import connect, ensure_ready

_client: aioredis.Redis | None = None
_lock = asyncio.Lock()


async def client() -> aioredis.Redis:
    global _client
    async with _lock:
        if _client is None:
            fresh = connect(os.environ["REDIS_URL"])
            await ensure_ready(fresh)
            _client = fresh
    return _client


class Sleep(BaseModel):
    ms: int = 0


class RecordingProcessor(Processor[Sleep]):
    queue = "rec"
    config = QueueConfig(concurrency=20, max_stalls=3)

    async def process(self, job: Job[Sleep]) -> None:
        await (await client()).hincrby("test:started", job.id, 1)
        await asyncio.sleep(job.data.ms / 1000)
        await (await client()).hincrby("test:exec", job.id, 1)


app = [RecordingProcessor()]
