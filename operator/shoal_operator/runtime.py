"""The operator's long-lived parts, wired together once: API client, registry, reconciler, loop.

kopf's handlers reach everything through one ``OperatorRuntime``; ``start`` (from kopf's startup)
launches the scaling loop, the Lease elector and the metrics and health servers, ``stop`` (from
cleanup) ends them cleanly and hands the Lease over.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from shoal_operator import health
from shoal_operator.events import EventRecorder
from shoal_operator.kube import KubeApi
from shoal_operator.leader import Leadership, LeaseElector
from shoal_operator.reconciler import Reconciler
from shoal_operator.redis_clients import RedisClients
from shoal_operator.scaling_loop import ScalingLoop
from shoal_operator.settings import OperatorSettings
from shoal_operator.state import PoolKey, Registry
from shoal_operator.telemetry import Telemetry, logger

log = logger("shoal.operator")

#: The liveness probe fails when the loop has not finished a pass for this many ticks (or 60 s).
STALE_TICKS = 30


class OperatorRuntime:
    def __init__(
        self, settings: OperatorSettings, api: KubeApi, leadership: Leadership | None = None
    ) -> None:
        self.settings = settings
        self.api = api
        self.telemetry = Telemetry()
        self.leadership = leadership or Leadership()
        api.may_write = self.leadership.leading
        # Read at scrape time: right even while a pass hangs on an unanswering API server.
        self.telemetry.leader.set_function(lambda: 1.0 if self.leadership.leading() else 0.0)
        self.heartbeat = health.Heartbeat(
            stall_seconds=max(60.0, STALE_TICKS * settings.tick_seconds)
        )
        self.heartbeat.leading = self.leadership.leading
        self.registry = Registry()
        self.events = EventRecorder(api, self.telemetry, instance=settings.pod_name)
        self.redis = RedisClients(settings, api)
        self.reconciler = Reconciler(
            api=api, registry=self.registry, settings=settings, telemetry=self.telemetry,
            leadership=self.leadership,
        )  # fmt: skip
        self.loop = ScalingLoop(
            settings=settings,
            registry=self.registry,
            api=api,
            redis=self.redis,
            reconciler=self.reconciler,
            events=self.events,
            telemetry=self.telemetry,
            leadership=self.leadership,
            heartbeat=self.heartbeat,
        )
        self._stop = asyncio.Event()
        self._resign = asyncio.Event()  # set after the last write, so the Lease goes last
        self._task: asyncio.Task[None] | None = None
        self._elector_task: asyncio.Task[None] | None = None
        self._metrics_server: Any = None
        self._health_server: Any = None

    def start(self) -> None:
        s = self.settings
        if s.metrics_port is not None and self._metrics_server is None:
            self._metrics_server = self.telemetry.serve(host=s.metrics_host, port=s.metrics_port)
        if s.liveness_port is not None and self._health_server is None:
            self._health_server = health.serve(
                self.heartbeat.check, host=s.liveness_host, port=s.liveness_port
            )
        if isinstance(self.leadership, LeaseElector) and self._elector_task is None:
            self._elector_task = asyncio.create_task(
                self.leadership.run(self._resign), name="shoal lease elector"
            )
        if self._task is None:
            self.heartbeat.beat()
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
        self._resign.set()
        if self._elector_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._elector_task
            self._elector_task = None
        await self.redis.close()
        await self.api.close()
        for server in (self._metrics_server, self._health_server):
            if server is not None:
                server.shutdown()
        self._metrics_server = self._health_server = None
        log.info("operator stopped")

    def forget(self, key: PoolKey) -> None:
        state = self.registry.remove(key)
        self.reconciler.pdbs.discard(key)
        self.loop.pacer.forget(key)
        if state is not None:
            self.telemetry.forget_pool(*key)
