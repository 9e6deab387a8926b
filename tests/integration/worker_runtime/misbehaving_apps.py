"""Processors that misbehave, run by `shoal worker` subprocesses in tests."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.worker_runtime.apps import client
from worker_runtime import Job, Processor, QueueConfig
from worker_runtime.core.backoff import Backoff, RetryPolicy


class Unusual(BaseException):
    """A BaseException subclass of the user's own."""


RAISE: dict[str, type[BaseException]] = {
    "CancelledError": asyncio.CancelledError,
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "Unusual": Unusual,
}


class Raising(Processor[Any]):
    """``{"raise": NAME}`` raises that BaseException; anything else completes."""

    queue = "bad"
    config = QueueConfig(retry=RetryPolicy(attempts=2, backoff=Backoff(delay_seconds=0)))

    async def process(self, job: Job[Any]) -> str:
        await (await client()).hincrby("test:started", job.id, 1)
        name = job.data.get("raise")
        if name:
            raise RAISE[name]("from the processor")
        return "ok"


class Stubborn(Processor[Any]):
    """Ignores every cancellation until the job's ``test:release`` flag is set."""

    queue = "stubborn"

    async def process(self, job: Job[Any]) -> None:
        redis = await client()
        await redis.hincrby("test:started", job.id, 1)
        while True:
            try:
                if await redis.exists("test:release"):
                    return
                await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                # Wherever the cancellation lands (a Redis call too): recorded, then ignored.
                await redis.hincrby("test:ignored", job.id, 1)


app = [Raising(), Stubborn()]
