"""A worker that drains a queue named by TEST_QUEUE: the local process standing in for pods."""

from __future__ import annotations

import os
from typing import Any

from worker_runtime import Job, Processor, QueueConfig


class Drain(Processor[Any]):
    queue = os.environ.get("TEST_QUEUE", "drain")
    config = QueueConfig(concurrency=50)

    async def process(self, job: Job[Any]) -> None:
        return None


app = [Drain()]
