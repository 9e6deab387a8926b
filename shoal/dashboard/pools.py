"""WorkerPools as the dashboard shows them (``--kube``): read from the API server's status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shoal.dashboard.history import sparkline_points

CACHE_SECONDS = 5.0  # one LIST per period, whatever the number of browsers or pages
MIN_SLOTS = 60  # a chart's x axis spans at least this many samples (it fills from the right)


@dataclass(frozen=True, slots=True)
class PoolRow:
    namespace: str
    name: str
    queues: list[str]
    mode: str
    replicas: int
    ready: int
    desired: int | None
    backlog: int | None
    in_flight: int | None
    oldest_age: float | None
    last_scale_time: str
    last_scale_reason: str
    conditions: list[dict[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def pool_row(obj: dict[str, Any]) -> PoolRow:
    """One WorkerPool object (a dict from the API) -> the row the pools page shows."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    age = status.get("oldestJobAgeSeconds")
    return PoolRow(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        queues=[str(q) for q in spec.get("queues", [])],
        mode=str((spec.get("scaling") or {}).get("mode", "Auto")),
        replicas=_int(status.get("replicas")) or 0,
        ready=_int(status.get("readyReplicas")) or 0,
        desired=_int(status.get("desiredReplicas")),
        backlog=_int(status.get("backlog")),
        in_flight=_int(status.get("inFlight")),
        oldest_age=float(age) if isinstance(age, int | float) else None,
        last_scale_time=str(status.get("lastScaleTime") or ""),
        last_scale_reason=str(status.get("lastScaleReason") or ""),
        conditions=[
            {k: str(c.get(k, "")) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
    )


class PoolPoint(NamedTuple):
    at_ms: int
    ready: int
    desired: int
    backlog: int


class PoolHistory:
    """Each pool's replicas, desired replicas and backlog over a window (pure; time is given)."""

    def __init__(self, *, window_ms: int) -> None:
        self.window_ms = window_ms
        self.points: dict[str, deque[PoolPoint]] = {}

    def add(self, rows: list[PoolRow], *, now_ms: int) -> None:
        seen = set()
        for row in rows:
            seen.add(row.key)
            series = self.points.setdefault(row.key, deque())
            desired = row.desired if row.desired is not None else row.replicas
            series.append(PoolPoint(now_ms, row.ready, desired, row.backlog or 0))
            while series[0].at_ms < now_ms - self.window_ms:
                series.popleft()
        for gone in set(self.points) - seen:  # deleted pools
            del self.points[gone]

    def chart(self, key: str) -> dict[str, str]:
        """SVG points: ready and desired replicas on one scale, the backlog on its own."""
        series = list(self.points.get(key, ()))
        slots = max(MIN_SLOTS, len(series))
        top = float(max([p.desired for p in series] + [p.ready for p in series] + [1]))
        return {
            "ready": sparkline_points([p.ready for p in series], slots=slots, top=top),
            "desired": sparkline_points([p.desired for p in series], slots=slots, top=top),
            "backlog": sparkline_points([p.backlog for p in series], slots=slots),
        }


def pools_path(namespace: str | None) -> str:
    base = "/apis/shoal.dev/v1alpha1"
    return f"{base}/namespaces/{namespace}/workerpools" if namespace else f"{base}/workerpools"


def _configuration(kubeconfig: str) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class PoolReader:
    """Lists WorkerPools through the operator's small async client every `CACHE_SECONDS`."""

    def __init__(
        self,
        namespaces: tuple[str, ...],
        *,
        kubeconfig: str | None = None,
        history_seconds: float = 3600.0,
    ) -> None:
        from shoal_operator.kube import KubeApi, load_configuration  # only with --kube

        self.api = KubeApi(_configuration(kubeconfig) if kubeconfig else load_configuration(),
                           attempts=2)  # fmt: skip
        self.namespaces = namespaces
        self._rows: list[PoolRow] = []
        self._read_once = False
        self.error: str | None = None
        self.history = PoolHistory(window_ms=round(history_seconds * 1000))
        self._task: asyncio.Task[None] | None = None

    async def rows(self) -> list[PoolRow]:
        """The pools as last read; reads now only before the first read (pages never wait on a
        LIST of a thousand pools: the loop refreshes them)."""
        if not self._read_once:
            await self.refresh()
        return self._rows

    async def refresh(self) -> None:
        import aiohttp

        from shoal_operator.kube import ApiError

        try:
            items: list[dict[str, Any]] = []
            for namespace in self.namespaces or (None,):
                items.extend(await self.api.list(pools_path(namespace)))
            self._rows = sorted((pool_row(i) for i in items), key=lambda r: r.key)
            self.history.add(self._rows, now_ms=round(time.time() * 1000))
            self.error = None
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            self.error = f"cannot list WorkerPools: {exc}"
        self._read_once = True

    async def _loop(self) -> None:
        """Read every period, watched or not, so the charts have no gaps."""
        while True:
            await self.refresh()
            await asyncio.sleep(CACHE_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="shoal-dashboard-pools")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.api.close()
