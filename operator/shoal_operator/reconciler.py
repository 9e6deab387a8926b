"""Make a pool's children match its spec: the Deployment and the PodDisruptionBudget.

Level-based and idempotent: every call renders the full desired state from the current spec and
server-side applies it, so running it twice, after a restart or after drift changes nothing.

Who owns ``spec.replicas``: the reconciler (field manager ``shoal-operator``) applies everything
but replicas; the scaling loop applies replicas alone as ``shoal-operator-scaler``. A Deployment
is born with replicas, so creation hands them over the way the Kubernetes docs describe: apply
with replicas as ``shoal-operator``, apply replicas as the scaler (now co-owned), apply again
without them (the scaler is left the only owner). A half-done handover (a crash in between) is
finished on the next reconcile, before replicas could fall back to the default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from shoal_operator.drift import deployment_drift
from shoal_operator.kube import ApiError, KubeApi, deployment_path, pdb_path, workerpool_path
from shoal_operator.leader import Leadership
from shoal_operator.render import (
    FIELD_MANAGER,
    SCALER_FIELD_MANAGER,
    render_deployment,
    render_pdb,
    replicas_patch,
)
from shoal_operator.settings import OperatorSettings
from shoal_operator.state import PoolKey, PoolState, Registry, workload_of
from shoal_operator.telemetry import Telemetry, logger

REPAIR_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

log = logger("shoal.operator.reconciler")


def scaler_owns_replicas(deployment: Mapping[str, Any]) -> bool:
    for entry in deployment.get("metadata", {}).get("managedFields") or ():
        fields = entry.get("fieldsV1") or {}
        if entry.get("manager") == SCALER_FIELD_MANAGER and "f:replicas" in fields.get(
            "f:spec", {}
        ):
            return True
    return False


def initial_replicas(state: PoolState) -> int:
    """Replicas a new Deployment starts with; the scaling loop takes over from the next tick."""
    assert state.pool is not None
    spec = state.pool.spec
    if spec.scaling.mode == "Manual":
        return spec.manual_replicas()
    if state.desired is not None:  # re-created after deletion: back to the last decision
        return state.desired
    return spec.scaling.min_replicas


class Reconciler:
    def __init__(
        self,
        *,
        api: KubeApi,
        registry: Registry,
        settings: OperatorSettings,
        telemetry: Telemetry,
        leadership: Leadership | None = None,
    ) -> None:
        self._api = api
        self._leadership = leadership or Leadership()
        self._registry = registry
        self._settings = settings
        self._telemetry = telemetry
        self._repairs: dict[PoolKey, asyncio.Task[None]] = {}
        self._dirty: set[PoolKey] = set()
        #: PDBs seen by the watch: a pool that needs none has one deleted only if it exists
        self.pdbs: set[PoolKey] = set()

    def desired_deployment(self, state: PoolState, replicas: int | None = None) -> dict[str, Any]:
        assert state.pool is not None
        return render_deployment(
            state.pool,
            default_redis_url=self._settings.redis_url,
            heartbeat_seconds=self._settings.worker_heartbeat_seconds,
            replicas=replicas,
            key_prefix=self._settings.key_prefix,
        )

    async def reconcile(self, state: PoolState, *, force: bool = False) -> None:
        """Apply the pool's children; raise ApiError when the API refuses (after retries)."""
        async with state.lock:
            try:
                await self._reconcile(state, force=force)
            except ApiError as exc:
                state.reconcile_error = f"applying children failed: {exc}"
                self._telemetry.reconciles.labels("error").inc()
                self._telemetry.errors.labels("reconcile").inc()
                raise
            finally:
                state.touched = True
            state.reconcile_error = None
            self._telemetry.reconciles.labels("ok").inc()

    async def _reconcile(self, state: PoolState, *, force: bool) -> None:
        if state.pool is None or state.deleting:
            return  # an invalid spec is reported in status; deletion is the GC's job
        ns, name = state.key
        generation = state.generation
        changed = force or generation is None or generation != state.reconciled_generation
        path = deployment_path(ns, name)
        desired = self.desired_deployment(state)
        existing = await self._api.get(path)
        if existing is None:
            if not await self._pool_still_there(state):
                return
            replicas = initial_replicas(state)
            first = self.desired_deployment(state, replicas)
            await self._api.apply(path, first, manager=FIELD_MANAGER)
            await self._hand_over(ns, name, replicas)
            current = await self._api.apply(path, desired, manager=FIELD_MANAGER)
            log.info("deployment created", namespace=ns, pool=name, replicas=replicas)
        else:
            current = existing
            if not scaler_owns_replicas(existing):
                await self._hand_over(ns, name, int(existing.get("spec", {}).get("replicas", 1)))
                changed = True
            if changed or deployment_drift(desired, existing):
                current = await self._api.apply(path, desired, manager=FIELD_MANAGER)
        self._registry.set_workload(state.key, workload_of(current))
        await self._reconcile_pdb(state, changed=changed or existing is None)
        state.reconciled_generation = generation

    async def _hand_over(self, ns: str, name: str, replicas: int) -> None:
        patch = replicas_patch(name, ns, replicas)
        await self._api.apply(deployment_path(ns, name), patch, manager=SCALER_FIELD_MANAGER)

    async def _reconcile_pdb(self, state: PoolState, *, changed: bool) -> None:
        assert state.pool is not None
        ns, name = state.key
        desired = render_pdb(state.pool)
        if desired is None:
            if state.key in self.pdbs:
                await self._api.delete(pdb_path(ns, name))
                self.pdbs.discard(state.key)
        elif changed or state.key not in self.pdbs:
            await self._api.apply(pdb_path(ns, name), desired, manager=FIELD_MANAGER)
            self.pdbs.add(state.key)

    async def _pool_still_there(self, state: PoolState) -> bool:
        # A Deployment deleted by the garbage collector must not come back for a deleted pool.
        body = await self._api.get(workerpool_path(state.namespace, state.name))
        if body is None:
            return False
        meta = body.get("metadata", {})
        return meta.get("uid") == state.uid and not meta.get("deletionTimestamp")

    # -- drift repair ---------------------------------------------------------------------
    def request_repair(self, key: PoolKey, why: str) -> None:
        """Reconcile ``key`` soon, in the background, retrying with backoff until it works."""
        if key in self._repairs:
            self._dirty.add(key)  # already running: run once more afterwards
            return
        log.info("repairing", namespace=key[0], pool=key[1], why=why)
        task = asyncio.create_task(self._repair(key), name=f"repair {key[0]}/{key[1]}")
        self._repairs[key] = task
        task.add_done_callback(lambda _t: self._repairs.pop(key, None))

    async def _repair(self, key: PoolKey) -> None:
        attempt = 0
        while True:
            state = self._registry.get(key)
            if state is None or state.pool is None or state.deleting:
                return
            await self._leadership.wait()  # a follower repairs nothing; the leader will
            self._dirty.discard(key)
            try:
                await self.reconcile(state, force=True)
            except ApiError as exc:
                delay = REPAIR_BACKOFF[min(attempt, len(REPAIR_BACKOFF) - 1)]
                attempt += 1
                log.warning("repair failed", namespace=key[0], pool=key[1], error=str(exc),
                            retry_in=delay)  # fmt: skip
                await asyncio.sleep(delay)
                continue
            if key not in self._dirty:
                return

    async def close(self) -> None:
        tasks = list(self._repairs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
