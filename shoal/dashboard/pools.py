"""WorkerPools as the dashboard shows them (``--kube``): read from the API server's status."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

CACHE_SECONDS = 5.0  # one LIST per period, whatever the number of browsers or pages


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


def pools_path(namespace: str | None) -> str:
    base = "/apis/shoal.dev/v1alpha1"
    return f"{base}/namespaces/{namespace}/workerpools" if namespace else f"{base}/workerpools"


def _configuration(kubeconfig: str) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class PoolReader:
    """Lists WorkerPools through the operator's small async client; cached for a few seconds."""

    def __init__(self, namespaces: tuple[str, ...], *, kubeconfig: str | None = None) -> None:
        from shoal_operator.kube import KubeApi, load_configuration  # only with --kube

        self.api = KubeApi(_configuration(kubeconfig) if kubeconfig else load_configuration(),
                           attempts=2)  # fmt: skip
        self.namespaces = namespaces
        self._rows: list[PoolRow] = []
        self._at = float("-inf")
        self.error: str | None = None

    async def rows(self) -> list[PoolRow]:
        if time.monotonic() - self._at < CACHE_SECONDS:
            return self._rows
        import aiohttp

        from shoal_operator.kube import ApiError

        try:
            items: list[dict[str, Any]] = []
            for namespace in self.namespaces or (None,):
                items.extend(await self.api.list(pools_path(namespace)))
            self._rows = sorted((pool_row(i) for i in items), key=lambda r: r.key)
            self.error = None
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            self.error = f"cannot list WorkerPools: {exc}"
        self._at = time.monotonic()
        return self._rows

    async def close(self) -> None:
        await self.api.close()
