"""Leader election on a ``coordination.k8s.io/v1`` Lease: of N operator replicas, one acts.

Every replica watches (kopf keeps its registry warm), only the leader writes: the scaling loop,
reconciles, repairs and Events all wait for ``leading()``, and ``KubeApi`` refuses any write
made while it is false. The algorithm is client-go's:

- A candidate takes the Lease when it is free, its own, or *expired*: its record (holder,
  renewTime, resourceVersion) has not changed for ``lease_seconds`` as measured on the
  candidate's own monotonic clock since it first saw that record. Wall-clock times in the
  Lease are written for people, never compared, so clock skew between nodes does not matter.
- Writes use the Lease's resourceVersion (optimistic concurrency): of two candidates racing for
  an expired Lease, one gets 409 Conflict.
- The leader is leading until ``renew_seconds`` (< ``lease_seconds``) after the *start* of its
  last successful renewal. A candidate first saw that renewal after it was written, so it can
  take over no sooner than ``lease_seconds`` after that start: the old leader has stopped acting
  ``lease_seconds - renew_seconds`` before. A leader stalled (SIGSTOP, a blocked loop, a long GC)
  finds on waking that its monotonic deadline has passed and writes nothing before renewing.
- A leader that cannot renew (an API brownout) stops acting but keeps trying; if no one took the
  Lease meanwhile it renews its own and carries on, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shoal_operator.kube import ApiError, KubeApi
from shoal_operator.telemetry import logger

log = logger("shoal.operator.leader")

LEASE_SECONDS = 10.0
RENEW_SECONDS = 7.0
RETRY_SECONDS = 1.0


class Leadership:
    """No election: this process is always the leader (one replica, or tests)."""

    def leading(self) -> bool:
        return True

    async def wait(self) -> None:
        return None


def lease_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


def micro_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Timing:
    lease_seconds: float = LEASE_SECONDS
    renew_seconds: float = RENEW_SECONDS
    retry_seconds: float = RETRY_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.retry_seconds < self.renew_seconds < self.lease_seconds:
            raise ValueError("lease timing needs 0 < retry < renew < lease seconds")


def may_take(
    *, holder: str | None, me: str, observed_at: float, now: float, lease_seconds: float
) -> bool:
    """Whether ``me`` may write the Lease: free, ours, or unchanged for a whole lease (pure)."""
    return not holder or holder == me or now - observed_at >= lease_seconds


class LeaseElector(Leadership):
    def __init__(
        self,
        api: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._api = api
        self.namespace, self.name, self.identity = namespace, name, identity
        self.timing = timing
        self._clock, self._wall = clock, wall
        self._on_change = on_change
        self._valid_until: float | None = None  # monotonic; leading while before it
        self._seen: tuple[Any, ...] | None = None  # the Lease record last read
        self._seen_at = 0.0  # monotonic time it was first read
        self._was_leading = False
        self._changed = asyncio.Event()

    def leading(self) -> bool:
        return self._valid_until is not None and self._clock() < self._valid_until

    async def wait(self) -> None:
        while not self.leading():
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.timing.retry_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Acquire and renew until ``stop``; then give the Lease up if it is ours."""
        while not stop.is_set():
            began = self._clock()
            try:
                await self.try_acquire_or_renew()
            except ApiError as exc:
                log.warning("lease not renewed", lease=self.name, error=str(exc),
                            leading=self.leading())  # fmt: skip
            self._notice()
            # Leaders retry at once after a failure, followers every retry period.
            wait = max(0.0, self.timing.retry_seconds - (self._clock() - began))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        await self.release()
        await self._api.close()

    def _notice(self) -> None:
        now = self.leading()
        if now != self._was_leading:
            self._was_leading = now
            log.info("leading" if now else "not leading", lease=self.name, identity=self.identity)
            if self._on_change is not None:
                self._on_change(now)
            self._changed.set()

    async def try_acquire_or_renew(self) -> bool:
        began = self._clock()
        path = lease_path(self.namespace, self.name)
        lease = await self._api.get(path, guarded=False)
        if lease is None:
            body = self._record(None)
            await self._api.create(lease_path(self.namespace), body, guarded=False)
            return self._won(began)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self._seen:
            self._seen, self._seen_at = record, began
        if not may_take(holder=holder, me=self.identity, observed_at=self._seen_at, now=began,
                        lease_seconds=self.timing.lease_seconds):  # fmt: skip
            self._valid_until = None
            return False
        if holder != self.identity:
            self._valid_until = None  # taking over: act only once the write succeeded
        body = self._record(lease)
        try:
            await self._api.replace(path, body, guarded=False)
        except ApiError as exc:
            if exc.status == 409:  # someone else wrote it first: read again next time
                return False
            raise
        if holder != self.identity:
            log.info("lease acquired", lease=self.name, identity=self.identity, previous=holder)
        return self._won(began)

    def _won(self, began: float) -> bool:
        self._valid_until = began + self.timing.renew_seconds
        self._seen = None
        return True

    def _record(self, lease: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time(self._wall())
        old = (lease or {}).get("spec") or {}
        ours = old.get("holderIdentity") == self.identity
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease_seconds)),
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": int(old.get("leaseTransitions") or 0) + (0 if ours else 1),
        }
        if lease is None:
            spec["leaseTransitions"] = 0
            meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        else:
            meta = dict(lease["metadata"])
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": spec}  # fmt: skip

    async def release(self) -> None:
        """On a clean stop: hand the Lease over at once instead of after it expires."""
        if not self.leading():
            return
        self._valid_until = None
        self._notice()
        path = lease_path(self.namespace, self.name)
        try:
            lease = await self._api.get(path, guarded=False)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            await self._api.replace(path, lease, guarded=False)
            log.info("lease released", lease=self.name, identity=self.identity)
        except ApiError as exc:
            log.warning("lease not released", lease=self.name, error=str(exc))
