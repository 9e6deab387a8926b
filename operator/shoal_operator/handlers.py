"""The kopf handlers: thin, they feed the registry and call the reconciler.

- WorkerPool events (every one, including the initial listing) update the in-memory registry
  the scaling loop reads; create, update (of the spec) and resume reconcile the children, with
  kopf retrying failures with backoff.
- Deployment and PodDisruptionBudget events (server-side filtered to Shoal's children) keep
  replicas current and trigger a repair when a child drifted or was deleted.
- Startup tunes kopf (annotations under shoal.dev/, no per-handler Events) and starts the loop;
  cleanup stops it.
- Every replica runs these (a warm registry); reconciles wait until this replica leads, so a
  follower writes nothing, not even kopf's progress annotations.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import kopf

from shoal_operator.drift import deployment_drift, pdb_drift
from shoal_operator.kube import ApiError, NotLeading, workerpool_path
from shoal_operator.render import POOL_LABEL, render_pdb
from shoal_operator.runtime import OperatorRuntime
from shoal_operator.state import PoolKey, workload_of
from shoal_operator.telemetry import logger
from worker_runtime.core.crd import GROUP, PLURAL, VERSION

CHILD_SELECTOR = f"app.kubernetes.io/managed-by=shoal,{POOL_LABEL}"
CHILD_LABELS: dict[str, Any] = {
    "app.kubernetes.io/managed-by": "shoal",
    POOL_LABEL: kopf.PRESENT,
}
RETRY_DELAYS = (1, 2, 5, 10, 30, 60)

log = logger("shoal.operator.handlers")


def _key(body: kopf.Body) -> PoolKey:
    return (str(body.metadata.namespace), str(body.metadata.name))


def _owner(body: kopf.Body) -> PoolKey:
    return (str(body.metadata.namespace), str(body.metadata.labels.get(POOL_LABEL, "")))


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.peering.standalone = True
    # Handler progress and the last handled spec go in annotations under shoal.dev/ (status
    # belongs to Shoal's schema, which has no room for kopf's fields).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="shoal.dev")
    settings.persistence.diffbase_storage = LeanDiffBaseStorage(
        prefix="shoal.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "shoal.dev/finalizer"
    # Events: Shoal posts its own (scaling, errors); kopf only its warnings and errors.
    settings.posting.level = logging.WARNING
    # Only Shoal's children are watched, filtered by the API server.
    settings.watching.label_selectors["apps", "deployments"] = CHILD_SELECTOR
    settings.watching.label_selectors["policy", "poddisruptionbudgets"] = CHILD_SELECTOR
    # Never give up on the API server: a finite list ends in kopf escalating and the operator
    # exiting, i.e. a restart for a brownout of a minute.
    settings.networking.error_backoffs = Backoffs()
    settings.execution.max_workers = 4  # only the probe is synchronous


class LeanDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base, built without deep-copying what it drops anyway.

    kopf builds a pool's essence on every event: a deep copy of the whole body, then status
    and metadata are thrown away. Each status write comes back as such an event, and the copy
    of status and managedFields was the largest part of handling it. Same essence, same keys.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        fields = list(extra_fields or ())  # ("spec",) from on.update(field="spec")
        if any(_dropped(f) for f in fields):  # a handler wants some of status: kopf's own way
            return super().build(body=body, extra_fields=fields)
        raw = {k: v for k, v in body.items() if k != "status"}
        raw["metadata"] = {k: v for k, v in body.metadata.items() if k != "managedFields"}
        return super().build(body=kopf.Body(raw), extra_fields=fields)  # type: ignore[arg-type]


def _dropped(field: Any) -> bool:
    """Whether kopf's ``field`` (a dotted string or a tuple) lies where the lean copy cuts."""
    path = tuple(field.split(".")) if isinstance(field, str) else tuple(field)
    return path[:1] == ("status",) or path[:2] == ("metadata", "managedFields")


class Backoffs:
    """1, 2, 5, 10, then 30 s forever (re-iterable: kopf iterates it afresh per request)."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1, 2, 5, 10), itertools.repeat(30))


def build_registry(rt: OperatorRuntime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster ServiceAccount first, then the kubeconfig: the same as our own client.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings)
        rt.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await rt.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def pool_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        if event["type"] == "DELETED":
            rt.forget(_key(body))
        else:
            rt.registry.upsert(body)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def reconcile(body: kopf.Body, retry: int, **_: Any) -> None:
        latest: Any = body
        while True:
            if not rt.leadership.leading():
                await rt.leadership.wait()
                # Newer events of this pool queued behind this handler while it waited: act
                # on the pool as it is now, never on a spec from before (a rollout back and
                # forth), and start from the status the previous leader left.
                latest = await rt.api.get(workerpool_path(*_key(body)))
                if latest is None:
                    return  # deleted meanwhile
                rt.registry.adopt(rt.registry.upsert(latest))
            state = rt.registry.upsert(latest)
            if state.pool is None:
                return  # invalid: the scaling loop reports it in status; retrying will not help
            try:
                await rt.reconciler.reconcile(state)
                return
            except NotLeading:
                continue  # lost the Lease midway: the next leader (maybe us again) redoes it
            except ApiError as exc:
                _retry_later(exc, retry)

    @kopf.on.event("apps", "v1", "deployments", labels=CHILD_LABELS, registry=registry)
    async def deployment_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        key = _owner(body)
        if str(body.metadata.name) != key[1]:
            return  # not a pool's Deployment (a pool's Deployment has the pool's name)
        if event["type"] == "DELETED":
            rt.registry.set_workload(key, None)
            _repair_if_wanted(rt, key, "Deployment deleted")
            return
        rt.registry.set_workload(key, workload_of(body))
        state = rt.registry.get(key)
        if state is None or state.pool is None:
            return  # its pool is not known yet: the pool's own handlers will reconcile it
        drift = deployment_drift(rt.reconciler.desired_deployment(state), dict(body))
        if drift:
            _repair_if_wanted(rt, key, f"Deployment drifted: {', '.join(drift[:5])}")

    @kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILD_LABELS, registry=registry)
    async def pdb_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        key = _owner(body)
        if str(body.metadata.name) != key[1]:
            return
        state = rt.registry.get(key)
        if event["type"] == "DELETED":
            rt.reconciler.pdbs.discard(key)
            if state is not None and state.pool is not None and render_pdb(state.pool):
                _repair_if_wanted(rt, key, "PodDisruptionBudget deleted")
            return
        rt.reconciler.pdbs.add(key)
        if state is None or state.pool is None:
            return
        desired = render_pdb(state.pool)
        if desired is None:
            _repair_if_wanted(rt, key, "PodDisruptionBudget not needed")
        elif pdb_drift(desired, dict(body)):
            _repair_if_wanted(rt, key, "PodDisruptionBudget drifted")

    return registry


def _retry_later(exc: ApiError, retry: int) -> None:
    if exc.status in (400, 403, 422):
        # Refused as written, not a passing outage: report it and try again slowly.
        raise kopf.TemporaryError(str(exc), delay=60) from None
    raise kopf.TemporaryError(str(exc), delay=RETRY_DELAYS[min(retry, 5)]) from None


def _repair_if_wanted(rt: OperatorRuntime, key: PoolKey, why: str) -> None:
    state = rt.registry.get(key)
    if state is None or state.pool is None or state.deleting:
        return
    rt.reconciler.request_repair(key, why)
