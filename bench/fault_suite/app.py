"""The processors the fault suite's workers run (``shoal worker bench.fault_suite.app:app``).

Every run writes to a *ledger*: a second Redis (``FAULT_LEDGER_URL``) that no scenario
faults, so what ran, where and how often is counted by the jobs themselves, independently of
the runtime's own counters (and survives the crash of the Redis under test):
``start`` and ``done`` are LISTs of ``"<job id> <worker pid> <epoch ms>"``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from worker_runtime import Job, Processor, QueueConfig, RetryPolicy

START, DONE = "ledger:start", "ledger:done"
PID = os.getpid()

_ledger: aioredis.Redis | None = None


def ledger() -> aioredis.Redis:
    global _ledger
    if _ledger is None:
        _ledger = aioredis.Redis.from_url(os.environ["FAULT_LEDGER_URL"], decode_responses=True)
    return _ledger


async def record(key: str, job_id: str) -> None:
    await ledger().rpush(key, f"{job_id} {PID} {int(time.time() * 1000)}")


class Work(BaseModel):
    """A job: sleep ``ms``, then behave as ``kind`` says (item 5's misbehaving processors)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ms: int = 0
    kind: Literal["ok", "cancel", "exit", "deaf"] = "ok"
    pad: str = ""  # bulk, to fill memory (the OOM scenario)


async def run(job: Job[Work]) -> None:
    await record(START, job.id)
    work = job.data
    if work.kind == "deaf":  # ignores cancellation: only the hard-kill bound stops it
        deadline = time.monotonic() + work.ms / 1000
        while time.monotonic() < deadline:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue
    else:
        await asyncio.sleep(work.ms / 1000)
    if work.kind == "cancel":
        raise asyncio.CancelledError()
    if work.kind == "exit":
        raise SystemExit(3)
    await record(DONE, job.id)


class Steady(Processor[Work]):
    """Well-behaved jobs; stalls tolerated generously (a storm may kill a job's worker twice)."""

    queue = "faults"
    config = QueueConfig(concurrency=50, max_stalls=10)

    async def process(self, job: Job[Work]) -> None:
        await run(job)


class Fragile(Processor[Work]):
    """Garbage and misbehaving jobs: one attempt, 1 s timeout, so each outcome shows at once."""

    queue = "fragile"
    config = QueueConfig(
        concurrency=20, max_stalls=1, timeout_seconds=1, retry=RetryPolicy(attempts=1)
    )

    async def process(self, job: Job[Work]) -> None:
        await run(job)


class Plain(Processor[Work]):
    """Well-behaved jobs under the default queue settings (one stall tolerated)."""

    queue = "plain"
    config = QueueConfig(concurrency=20)

    async def process(self, job: Job[Work]) -> None:
        await run(job)


app = [Steady(), Fragile(), Plain()]
