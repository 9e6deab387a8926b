"""What the operator knows of each pool, in memory, fed by kopf's watch events.

Everything here can be rebuilt from the cluster and Redis after a restart: specs and status
come from the WorkerPool watch, replicas from the Deployment watch; only the autoscaler's
History starts empty again (seeded with the current size, so a restart never scales down).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shoal_operator.conditions import StatusFacts, Workload, deployment_failure
from worker_runtime.core.autoscaler import Decision
from worker_runtime.core.observations import History, Observations
from worker_runtime.core.spec import ManifestError, WorkerPool, load_workerpool

PoolKey = tuple[str, str]  # (namespace, name)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(eq=False)
class PoolState:
    namespace: str
    name: str
    body: dict[str, Any]  # the latest WorkerPool seen (metadata, spec, status)
    pool: WorkerPool | None  # parsed; None when the spec is invalid
    spec_error: str | None = None
    #: status as last written by us (or read at start): what a patch is computed against
    status: dict[str, Any] = field(default_factory=dict)
    #: the facts ``status`` was made from (while it is that very dict): what a tick compares
    status_facts: tuple[StatusFacts, dict[str, Any]] | None = None
    workload: Workload | None = None
    deployment_seen: bool = False  # a Deployment event arrived (else workload is unknown)
    history: History | None = None
    observation: Observations | None = None
    decision: Decision | None = None
    desired: int | None = None  # replicas last decided (the decision, busy pods protected)
    gauged: int | None = None  # replicas the desired and replicas gauges both show
    busy_hold_since: float | None = None  # since when busy pods hold a scale-down (monotonic)
    last_obs: Observations | None = None  # the previous tick's observations, as read
    #: something other than Redis changed (spec, Deployment, reconcile): status must be redone
    touched: bool = True
    last_scale_time: datetime | None = None
    last_scale_reason: str | None = None
    reconciled_generation: int | None = None
    reconcile_error: str | None = None
    secret_error: str | None = None
    conflict: str | None = None  # another pool uses one of its queues on the same keyspace
    reported: dict[str, str] = field(default_factory=dict)  # error kind -> last Event message
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def key(self) -> PoolKey:
        return (self.namespace, self.name)

    @property
    def uid(self) -> str | None:
        uid = self.body.get("metadata", {}).get("uid")
        return uid if isinstance(uid, str) else None

    @property
    def generation(self) -> int | None:
        gen = self.body.get("metadata", {}).get("generation")
        return gen if isinstance(gen, int) else None

    @property
    def deleting(self) -> bool:
        return bool(self.body.get("metadata", {}).get("deletionTimestamp"))


#: What parse_pool reads of metadata; the rest (resourceVersion, managedFields) moves anyway.
PARSED_METADATA = ("name", "namespace", "labels", "annotations", "generation", "uid")


def same_manifest(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether ``a`` and ``b`` parse to the same pool (a status write's echo does)."""
    if any(a.get(k) != b.get(k) for k in ("apiVersion", "kind", "spec")):
        return False
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return all(ma.get(k) == mb.get(k) for k in PARSED_METADATA)


def parse_pool(body: Mapping[str, Any]) -> tuple[WorkerPool | None, str | None]:
    """The pool from a watched body, or the one-line reason it is not a valid WorkerPool."""
    manifest = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    try:
        return load_workerpool(manifest), None
    except ManifestError as exc:
        return None, str(exc)


class Registry:
    """Pools by (namespace, name), and the Deployments seen for them."""

    def __init__(self) -> None:
        self._pools: dict[PoolKey, PoolState] = {}
        # Deployments may be seen before their pool (watch order is not guaranteed).
        self._workloads: dict[PoolKey, Workload] = {}
        #: moves when a pool comes, goes or gets another spec (what queue claims depend on)
        self.version = 0

    def __len__(self) -> int:
        return len(self._pools)

    def __iter__(self) -> Iterator[PoolState]:
        return iter(list(self._pools.values()))

    def get(self, key: PoolKey) -> PoolState | None:
        return self._pools.get(key)

    def upsert(self, body: Mapping[str, Any]) -> PoolState:
        """Record the latest body of a pool; returns its state (new or updated)."""
        meta = body.get("metadata", {})
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        state = self._pools.get(key)
        if state is not None and same_manifest(state.body, body):
            # Most events are the echoes of status writes: validating the spec again would
            # cost more than everything else done for them.
            pool, error = state.pool, state.spec_error
        else:
            pool, error = parse_pool(body)
            self.version += 1
        if state is None or (state.uid is not None and state.uid != meta.get("uid")):
            status = dict(body.get("status") or {})
            state = PoolState(namespace=key[0], name=key[1], body=dict(body), pool=pool)
            # Survive a restart: what the previous operator wrote is the starting point.
            state.status = status
            state.last_scale_time = _parse_time(status.get("lastScaleTime"))
            reason = status.get("lastScaleReason")
            state.last_scale_reason = reason if isinstance(reason, str) else None
            gen = status.get("observedGeneration")
            state.reconciled_generation = gen if isinstance(gen, int) else None
            state.workload = self._workloads.get(key)
            state.deployment_seen = key in self._workloads
            self._pools[key] = state
        state.body = dict(body)
        state.pool, state.spec_error = pool, error
        state.touched = True
        return state

    def adopt(self, one: PoolState | None = None) -> None:
        """On becoming the leader: status as the cluster has it, everything to be redone."""
        for state in [one] if one is not None else self._pools.values():
            status = dict(state.body.get("status") or {})
            state.status = status
            state.last_scale_time = _parse_time(status.get("lastScaleTime"))
            reason = status.get("lastScaleReason")
            state.last_scale_reason = reason if isinstance(reason, str) else None
            gen = status.get("observedGeneration")
            if state.reconciled_generation is None and isinstance(gen, int):
                state.reconciled_generation = gen
            state.history, state.last_obs, state.touched = None, None, True

    def remove(self, key: PoolKey) -> PoolState | None:
        self.version += 1
        return self._pools.pop(key, None)

    def set_workload(self, key: PoolKey, workload: Workload | None) -> None:
        if workload is None:
            self._workloads.pop(key, None)
        else:
            self._workloads[key] = workload
        state = self._pools.get(key)
        if state is not None:
            state.workload = workload
            state.deployment_seen = True
            state.touched = True


def workload_of(deployment: Mapping[str, Any]) -> Workload:
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return Workload(
        spec_replicas=int(spec.get("replicas", 1)),
        replicas=int(status.get("replicas", 0)),
        ready_replicas=int(status.get("readyReplicas", 0)),
        failure=deployment_failure(status.get("conditions") or ()),
    )
