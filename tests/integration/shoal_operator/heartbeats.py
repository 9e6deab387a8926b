"""Worker heartbeats written straight to Redis: kwok pods run no worker, so tests say how busy
each pod is (the operator reads these to pick idle pods and to hold busy ones)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.observing.heartbeat import WorkerInfo, write_record
from worker_runtime.redis_io.connection import connect


def write_heartbeats(redis_url: str, queue: str, loads: Mapping[str, int]) -> None:
    """One worker per pod of ``loads`` (pod name -> jobs in flight), alive for 5 minutes."""

    async def run() -> None:
        client = connect(redis_url)
        now = int(time.time() * 1000)
        for pod, load in loads.items():
            info = WorkerInfo(id=f"w-{pod}", pod=pod, host=pod, pid=1, version="test",
                              queues=[queue], in_flight={queue: load}, capacity={queue: 5},
                              max_jobs=50, processed=0, failed=0, started_at=now,
                              last_heartbeat=now, interval_ms=5000, draining=False)  # fmt: skip
            await write_record(client, info, prefix=DEFAULT_PREFIX, ttl_seconds=300)
        await client.aclose()

    asyncio.run(run())
