"""The local driver behind `shoal up`: observe Redis, decide, reconcile processes; every tick.

The same decision function as the operator (`core.autoscaler.decide`), fed the same
observations (`pool_observer`), so a pool sizes itself on a laptop as it would in a cluster;
only the actuator differs: worker processes instead of a Deployment's pods.

    supervisor = Supervisor(pool, redis_url=url, log_dir=dir, report=print_tick)
    summary = await supervisor.run()       # until request_stop(); then drains every worker
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from redis.exceptions import RedisError

from worker_runtime.config import with_ca_file, with_password
from worker_runtime.core.autoscaler import decide, record_scale
from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.observations import History, Observations
from worker_runtime.core.spec import WorkerPool
from worker_runtime.core.worker_env import key_prefix_of
from worker_runtime.observing.heartbeat import WorkerInfo, list_workers
from worker_runtime.observing.pool_observer import PoolQuery, observe_pools, worker_loads
from worker_runtime.redis_io.connection import CONNECTION_ERRORS, RedisClient, connect
from worker_runtime.supervisor.process_pool import PoolSettings, ProcessPool
from worker_runtime.supervisor.report import QueueRow, RunSummary, TickReport

_READ_ERRORS: tuple[type[BaseException], ...] = (RedisError, *CONNECTION_ERRORS)


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    tick_seconds: float = 1.0
    processes: PoolSettings = field(default_factory=PoolSettings)
    redis_password: str | None = None  # joins the URL for the supervisor's own reads
    redis_ca_file: str | None = None  # REDIS_CA_FILE: a private CA, for its own reads too
    key_prefix: str = DEFAULT_PREFIX
    extra_env: Mapping[str, str] = field(default_factory=dict)  # added to every worker's env


def initial_replicas(pool: WorkerPool) -> int:
    spec = pool.spec
    return spec.manual_replicas() if spec.scaling.mode == "Manual" else spec.scaling.min_replicas


class Supervisor:
    def __init__(
        self,
        pool: WorkerPool,
        *,
        redis_url: str,
        log_dir: Path,
        report: Callable[[TickReport], None],
        options: SupervisorOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.options = options or SupervisorOptions()
        self.redis_url = redis_url
        self._report = report
        self._clock = clock
        self.started_at = clock()
        self._wake = asyncio.Event()
        self.processes = ProcessPool(
            pool,
            redis_url=redis_url,
            log_dir=log_dir,
            local_env={**os.environ, **self.options.extra_env},
            settings=self.options.processes,
            clock_start=self.started_at,
            on_exit=self._wake.set,
        )
        self.target = initial_replicas(pool)
        self.history = History()
        self.last_scale_reason: str | None = None
        self.last_scale_at: float | None = None
        self.peak_replicas = 0
        self.last_report: TickReport | None = None
        self._stop_requests = 0
        self._stopped = False
        self._last_obs: Observations | None = None

    def request_stop(self) -> None:
        """First call: drain every worker and return. Second call: kill them now."""
        self._stop_requests += 1
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop_requests > 0

    @property
    def stop_requests(self) -> int:
        return self._stop_requests

    async def run(self) -> RunSummary:
        url = with_password(self.redis_url, self.options.redis_password)
        redis = connect(with_ca_file(url, self.options.redis_ca_file), max_connections=4)
        try:
            await self.processes.scale_to(self.target, self._clock())
            while not self.stopping:
                await self._tick(redis)
                await self._sleep(self.options.tick_seconds)
            await self._shutdown(redis)
        finally:
            # Only an error gets here with processes left: never leave orphans behind.
            self.processes.kill_all(self._clock(), "supervisor failed")
            await self.processes.close()
            await redis.aclose()
        p = self.processes
        return RunSummary(
            pool=self.pool.metadata.name,
            seconds=round(self._clock() - self.started_at, 1),
            peak_replicas=self.peak_replicas,
            starts=p.starts,
            crashes=p.crashes,
            kills=p.kills,
        )

    # --- one tick ---------------------------------------------------------------------------

    async def _tick(self, redis: RedisClient) -> None:
        now = self._clock()
        obs, workers = await self._observe(redis)
        self.processes.note_heartbeats(workers)
        await self.processes.check(now)
        decision = decide(self.pool.spec, obs, self.history, now)
        self.history = decision.history
        if decision.replicas != self.target:
            self.processes.record_event(
                now, "scaled", None, f"{self.target} -> {decision.replicas}: {decision.reason}"
            )
            self.history = record_scale(
                self.history, at=now, before=self.target, after=decision.replicas
            )
            self.target = decision.replicas
            self.last_scale_reason, self.last_scale_at = decision.reason, now
        await self.processes.scale_to(self.target, now)
        self._emit(now, obs, decision.reason)

    async def _shutdown(self, redis: RedisClient) -> None:
        now = self._clock()
        self.processes.stop_all(now)
        self.target = 0
        while self.processes.process_count:
            if self._stop_requests > 1:
                self.processes.kill_all(now, "stop requested twice")
            now = self._clock()
            await self.processes.check(now)
            obs, workers = await self._observe(redis)
            self.processes.note_heartbeats(workers)
            left = self.processes.process_count
            self._emit(now, obs, f"stopping: draining {left} worker(s)")
            if left:
                await self._sleep(self.options.tick_seconds)
        await self.processes.check(self._clock())
        self._stopped = True
        self._emit(self._clock(), self._last_obs, "stopped: every worker drained")

    async def _sleep(self, seconds: float) -> None:
        """Wait for the next tick, or less when a worker exits or a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _observe(self, redis: RedisClient) -> tuple[Observations, list[WorkerInfo]]:
        queues = tuple(self.pool.spec.queues)
        key = self.pool.metadata.name
        prefix = key_prefix_of(self.pool.spec, default=self.options.key_prefix)
        query = PoolQuery(key=key, queues=queues, current_replicas=self.target)
        try:
            obs = (await observe_pools(redis, [query], prefix=prefix, with_workers=False))[key]
            if obs.error is not None:
                return obs, []
            workers = await list_workers(redis, prefix=prefix)
        except _READ_ERRORS as exc:
            error = f"Redis unreadable: {exc}"
            return Observations.failed(current_replicas=self.target, error=error), []
        return replace(obs, workers=worker_loads(workers, queues)), workers

    # --- reporting --------------------------------------------------------------------------

    def _emit(self, now: float, obs: Observations | None, reason: str) -> None:
        self._last_obs = obs
        running = self.processes.running()
        self.peak_replicas = max(self.peak_replicas, len(running))
        rows = []
        for q in obs.queues if obs is not None else ():
            rates = self.history.rates(q.queue)
            rows.append(
                QueueRow(
                    queue=q.queue,
                    waiting=q.waiting,
                    due_delayed=q.due_delayed,
                    active=q.in_flight,
                    arrival_rate=_round(rates.arrival_rate if rates else None),
                    finish_rate=_round(rates.finish_rate if rates else None),
                    oldest_waiting_seconds=round(q.oldest_waiting_age_seconds, 1),
                )
            )
        ago = None if self.last_scale_at is None else round(now - self.last_scale_at, 1)
        report = TickReport(
            t=round(now - self.started_at, 3),
            pool=self.pool.metadata.name,
            desired_replicas=self.target,
            replicas=len(running),
            ready_replicas=sum(1 for p in running if p.in_flight is not None),
            draining=len(self.processes.draining),
            backlog=obs.backlog if obs is not None else 0,
            in_flight=obs.in_flight if obs is not None else 0,
            queues=rows,
            workers=self.processes.rows(now),
            reason=reason,
            last_scale_reason=self.last_scale_reason,
            last_scale_seconds_ago=ago,
            observation_error=obs.error if obs is not None else None,
            phase="stopped" if self._stopped else "stopping" if self.stopping else "running",
            events=self.processes.take_events(),
        )
        self.last_report = report
        self._report(report)


def _round(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 2)
