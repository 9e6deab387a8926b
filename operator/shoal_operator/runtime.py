"""The operator's long-lived parts, wired together once: API client, registry, reconciler, loop.

kopf's handlers reach everything through one ``OperatorRuntime``; ``start`` (from kopf's startup)
launches the scaling loop and the metrics server, ``stop`` (from cleanup) ends them cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from shoal_operator.events import EventRecorder
from shoal_operator.kube import KubeApi
from shoal_operator.reconciler import Reconciler
from shoal_operator.redis_clients import RedisClients
from shoal_operator.scaling_loop import ScalingLoop
from shoal_operator.settings import OperatorSettings
from shoal_operator.state import PoolKey, Registry
from shoal_operator.telemetry import Telemetry, logger

log = logger("shoal.operator")

#: The liveness probe fails when the loop has not finished a pass for this many ticks (or 60 s).
STALE_TICKS = 30


class LoopStalled(RuntimeError):
    pass


class OperatorRuntime:
    def __init__(self, settings: OperatorSettings, api: KubeApi) -> None:
        self.settings = settings
        self.api = api
        self.telemetry = Telemetry()
        self.registry = Registry()
        self.events = EventRecorder(api, self.telemetry, instance=settings.pod_name)
        self.redis = RedisClients(settings, api)
        self.reconciler = Reconciler(
            api=api, registry=self.registry, settings=settings, telemetry=self.telemetry
        )
        self.loop = ScalingLoop(
            settings=settings,
            registry=self.registry,
            api=api,
            redis=self.redis,
            reconciler=self.reconciler,
            events=self.events,
            telemetry=self.telemetry,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._metrics_server: Any = None
        self._started_at = time.monotonic()

    def start(self) -> None:
        s = self.settings
        if s.metrics_port is not None and self._metrics_server is None:
            self._metrics_server = self.telemetry.serve(host=s.metrics_host, port=s.metrics_port)
        if self._task is None:
            self._started_at = time.monotonic()
            self._task = asyncio.create_task(self.loop.run(self._stop), name="shoal scaling loop")
        log.info("operator started", namespaces=list(s.namespaces) or "all",
                 tick_seconds=s.tick_seconds, default_redis=s.redis_url_shown)  # fmt: skip

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.reconciler.close()
        await self.events.flush()
        await self.redis.close()
        await self.api.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None
        log.info("operator stopped")

    def forget(self, key: PoolKey) -> None:
        state = self.registry.remove(key)
        self.reconciler.pdbs.discard(key)
        if state is not None:
            self.telemetry.forget_pool(*key)

    def loop_age(self) -> float:
        """Seconds since the scaling loop last finished a pass; raises when it has stalled."""
        last = self.loop.last_tick if self.loop.last_tick is not None else self._started_at
        age = time.monotonic() - last
        if age > max(60.0, STALE_TICKS * self.settings.tick_seconds):
            raise LoopStalled(f"the scaling loop has not finished a pass for {age:.0f} s")
        return round(age, 3)
