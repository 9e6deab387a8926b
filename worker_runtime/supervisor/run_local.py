"""Run a pool on this machine until a signal: Redis, signals, the view, around a Supervisor.

Shared by `shoal up` and `shoal demo`. The first SIGINT/SIGTERM drains every worker (exit 0
once they are gone); a second one kills them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from worker_runtime.core.spec import WorkerPool
from worker_runtime.redis_io.embedded_redis import EmbeddedRedis
from worker_runtime.supervisor.redis_target import RedisTarget
from worker_runtime.supervisor.report import RunSummary, TickReport
from worker_runtime.supervisor.supervisor import Supervisor, SupervisorOptions
from worker_runtime.supervisor.view import View


@contextlib.contextmanager
def redis_for(target: RedisTarget, *, started: Callable[[str], None]) -> Iterator[str]:
    """The target's URL, or a private Redis for the duration (``started`` gets its URL)."""
    if target.url is not None:
        yield target.url
        return
    with EmbeddedRedis() as private:
        started(private.url)
        yield private.url


async def supervise(
    pool: WorkerPool,
    *,
    redis_url: str,
    log_dir: Path,
    view: View,
    options: SupervisorOptions,
    on_tick: Callable[[Supervisor, TickReport], None] = lambda s, r: None,
) -> tuple[RunSummary, Supervisor]:
    """Run until SIGINT/SIGTERM (or ``supervisor.request_stop()`` from ``on_tick``)."""
    supervisor: Supervisor

    def report(tick: TickReport) -> None:
        view.tick(tick)
        on_tick(supervisor, tick)

    supervisor = Supervisor(
        pool, redis_url=redis_url, log_dir=log_dir, report=report, options=options
    )
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        summary = await supervisor.run()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return summary, supervisor
