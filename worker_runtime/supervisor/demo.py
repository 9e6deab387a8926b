"""`shoal demo`: a local pool of the demo processor, fed bursts, scaling up and back to zero.

The pool is `examples/local-demo.yaml` (a unit test keeps the two equal): scale-to-zero with
a short cooldown and stabilisation window so the whole cycle fits in well under a minute.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker_runtime.core.spec import WorkerPool, load_workerpool
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.producing.queue import Queue
from worker_runtime.supervisor.report import RunSummary, TickReport
from worker_runtime.supervisor.run_local import supervise
from worker_runtime.supervisor.supervisor import Supervisor, SupervisorOptions
from worker_runtime.supervisor.view import View

DEMO_MANIFEST: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "WorkerPool",
    "metadata": {"name": "demo"},
    "spec": {
        "image": "shoal:dev",
        "app": "worker_runtime.demo:app",
        "queues": [DEMO_QUEUE],
        "concurrency": 5,
        "timeoutSeconds": 30,
        "scaling": {
            "minReplicas": 0,
            "maxReplicas": 4,
            "targetDrainSeconds": 5,
            "scaleDownStabilizationSeconds": 5,
            "cooldownSeconds": 5,
        },
    },
}


def demo_pool(*, max_replicas: int = 4) -> WorkerPool:
    manifest = {**DEMO_MANIFEST, "spec": dict(DEMO_MANIFEST["spec"])}
    manifest["spec"]["scaling"] = {**DEMO_MANIFEST["spec"]["scaling"], "maxReplicas": max_replicas}
    return load_workerpool(manifest)


def bursts(jobs: int, duration: float, count: int = 3) -> list[tuple[float, int]]:
    """(seconds from start, jobs) for ``count`` even bursts spread over ``duration``."""
    n = max(1, min(count, jobs))
    sizes = [jobs // n + (1 if i < jobs % n else 0) for i in range(n)]
    step = duration / (n - 1) if n > 1 else 0.0
    return [(round(i * step, 3), size) for i, size in enumerate(sizes)]


@dataclass
class DemoResult:
    summary: RunSummary
    completed: int
    timed_out: bool


async def run_demo(
    *,
    redis_url: str,
    jobs: int,
    duration: float,
    job_ms: int,
    max_replicas: int,
    log_dir: Path,
    view: View,
    options: SupervisorOptions,
    deadline_seconds: float,
) -> DemoResult:
    pool = demo_pool(max_replicas=max_replicas)
    produced_at: float | None = None  # seconds since the supervisor started
    timed_out = False

    def on_tick(supervisor: Supervisor, tick: TickReport) -> None:
        nonlocal timed_out
        # Done once the last burst is in (seen by a tick that began after it) and the pool
        # is back to zero with nothing left to do.
        idle = tick.desired_replicas == tick.replicas == tick.draining == 0
        drained = tick.backlog == 0 and tick.in_flight == 0
        if produced_at is not None and tick.t > produced_at and idle and drained:
            supervisor.request_stop()
        elif tick.t > deadline_seconds and not supervisor.stopping:
            timed_out = True
            supervisor.request_stop()

    async with Queue(DEMO_QUEUE, redis_url=redis_url) as queue:
        before = (await queue.counts())["completed"]
        started = time.monotonic()

        async def produce() -> None:
            nonlocal produced_at
            for at, size in bursts(jobs, duration):
                await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
                await queue.enqueue_many([{"ms": job_ms}] * size)
            produced_at = time.monotonic() - started

        producer = asyncio.create_task(produce(), name="shoal-demo-producer")
        try:
            summary, _ = await supervise(
                pool,
                redis_url=redis_url,
                log_dir=log_dir,
                view=view,
                options=options,
                on_tick=on_tick,
            )
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        completed = (await queue.counts())["completed"] - before
    return DemoResult(summary, completed, timed_out)
