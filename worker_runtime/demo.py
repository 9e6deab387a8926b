"""The demo app: ``shoal worker worker_runtime.demo:app`` sleeps ``{"ms": N}`` per job.

It is what `shoal demo` runs and what the container image ships for end-to-end tests.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from worker_runtime.consuming.processor import Job, Processor

DEMO_QUEUE = "demo"


class SleepPayload(BaseModel):
    ms: int = Field(20, ge=0, le=3_600_000, description="how long the job sleeps")


class SleepProcessor(Processor[SleepPayload]):
    queue = DEMO_QUEUE

    async def process(self, job: Job[SleepPayload]) -> dict[str, int]:
        await asyncio.sleep(job.data.ms / 1000)
        return {"slept_ms": job.data.ms}


app = [SleepProcessor()]
