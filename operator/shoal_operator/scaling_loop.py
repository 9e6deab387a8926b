"""The autoscaling loop: one pass over all pools per tick, one Redis read per Redis server.

Each tick: pools are grouped by the Redis they use; ``observe_pools`` reads every queue of a
group in one pipelined round trip (plus one heartbeat read); ``decide`` sizes each pool from
its observations and its History (kept here, in memory); replicas are applied only when they
change, status only when it changes. A thousand idle pools cost one Redis read and no API call.

A History starts with the pool's current size as a recommendation, so after a restart the
scale-down window must pass again before anything shrinks: a restart never changes replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shoal_operator.deletion_cost import busy_pods, cost_changes, deletion_costs, safe_target
from shoal_operator.events import EventRecorder
from shoal_operator.health import Heartbeat
from shoal_operator.kube import ApiError, KubeApi, NotLeading, deployment_path, pods_path
from shoal_operator.leader import Leadership
from shoal_operator.reconciler import Reconciler
from shoal_operator.redis_clients import RedisClients, RedisConfigError, RedisTarget
from shoal_operator.render import (
    DELETION_COST_ANNOTATION,
    SCALER_FIELD_MANAGER,
    replicas_patch,
    selector_string,
)
from shoal_operator.settings import OperatorSettings
from shoal_operator.state import PoolState, Registry, workload_of
from shoal_operator.status_pacing import StatusPacer
from shoal_operator.status_sync import StatusChange, StatusWriter
from shoal_operator.telemetry import Telemetry, logger
from worker_runtime.core.autoscaler import decide, record_scale
from worker_runtime.core.observations import History, Observations, Recommendation
from worker_runtime.core.worker_env import termination_grace_seconds
from worker_runtime.observing.pool_observer import PoolQuery, observe_pools

log = logger("shoal.operator.scaling")


def asleep_and_unchanged(state: PoolState, obs: Observations | None) -> bool:
    """A pool idle at its floor whose queues saw nothing since the last tick: nothing to do.

    Most pools of a large fleet are idle, at zero or at a warm minimum of one or two; for them
    ``decide`` can only say the floor again (nothing waiting or below activation, nothing in
    flight, nothing to scale down), and status has nothing new. Skipping them keeps the tick
    near the cost of the Redis read.
    """
    if obs is None or obs.error is not None or state.touched or obs != state.last_obs:
        return False
    if state.pool is None or state.workload is None:
        return False
    scaling = state.pool.spec.scaling
    floor = scaling.min_replicas
    return (
        scaling.mode == "Auto"
        and state.workload.spec_replicas == floor
        and state.desired == floor
        and obs.in_flight == 0
        # asleep at zero, a backlog below activation wakes nothing; awake, any backlog counts
        and obs.backlog < (scaling.activation_backlog if floor == 0 else 1)
    )


def explained(target: RedisTarget, error: str) -> str:
    """A read error, with the CA that was used when TLS verification failed."""
    if "CERTIFICATE_VERIFY_FAILED" in error or "certificate verify failed" in error:
        ca = target.ca_ref or "the system's CA bundle (set spec.redis.caSecretRef)"
        error += f"; the server's TLS certificate is not signed by the CA of {ca}"
    return error


def flag_queue_conflicts(
    pools: Sequence[PoolState], groups: Sequence[tuple[RedisTarget, Sequence[PoolState]]]
) -> None:
    """Set ``conflict`` on pools that share a queue with another pool on one keyspace.

    Such pools take each other's jobs and scale on one backlog; a key prefix separates them.
    """
    claims: dict[tuple[str, str, str], list[PoolState]] = {}
    for target, members in groups:
        for state in members:
            assert state.pool is not None
            for queue in state.pool.spec.queues:
                claims.setdefault((*target.scope, queue), []).append(state)
    found: dict[tuple[str, str], str] = {}
    for (shown, prefix, queue), owners in claims.items():
        for state in owners if len(owners) > 1 else ():
            others = ", ".join(f"{o.namespace}/{o.name}" for o in owners if o is not state)
            found.setdefault(state.key, (
                f"queue {queue} on {shown} (key prefix {prefix}) is also used by pool "
                f"{others}: they take each other's jobs; give each its own "
                "spec.redis.keyPrefix or queue name"
            ))  # fmt: skip
    for state in pools:
        conflict = found.get(state.key)
        if conflict != state.conflict:
            state.conflict, state.touched = conflict, True  # status must say it, even asleep


def _first_reconcile_pending(state: PoolState) -> bool:
    # Its status comes once its children are applied: one status write per new pool, not two.
    return (
        state.pool is not None
        and state.reconciled_generation is None
        and state.reconcile_error is None
        and state.workload is None
    )


def seeded_history(current: int, now: float) -> History:
    """An empty History that remembers the current size, so nothing shrinks at once."""
    return History(recommendations=(Recommendation(now, current),))


@dataclass(frozen=True, slots=True)
class Step:
    """A decision taken for a pool, to apply: ``current`` replicas when taken, ``target``."""

    obs: Observations
    current: int
    target: int
    reason: str
    now: float


class ScalingLoop:
    def __init__(
        self,
        *,
        settings: OperatorSettings,
        registry: Registry,
        api: KubeApi,
        redis: RedisClients,
        reconciler: Reconciler,
        events: EventRecorder,
        telemetry: Telemetry,
        leadership: Leadership | None = None,
        heartbeat: Heartbeat | None = None,
        pacer: StatusPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._api = api
        self._redis = redis
        self._reconciler = reconciler
        self._events = events
        self._telemetry = telemetry
        self._clock = clock
        self._wall = wall
        self._leadership = leadership or Leadership()
        self._heartbeat = heartbeat
        self.pacer = pacer or StatusPacer(clock=clock)
        self.status = StatusWriter(api=api, events=events, telemetry=telemetry, pacer=self.pacer,
                                   wall=wall)  # fmt: skip
        self._acting = False  # led during the last pass
        self._retries_seen = 0
        self._claims: object = None  # what queue conflicts were last flagged for
        self.last_tick: float | None = None  # monotonic end of the last full pass
        self.ticks = 0

    async def run(self, stop: asyncio.Event) -> None:
        period = self._settings.tick_seconds
        while not stop.is_set():
            began = self._clock()
            leading = self._leadership.leading()
            if leading and not self._acting:
                # Another replica (or our earlier self) may have written status since: start
                # from what the watch shows, with histories seeded afresh like after a restart.
                self._registry.adopt()
            self._acting = leading
            try:
                if leading:
                    await self.tick()
            except Exception as exc:  # one bad pass must not end scaling for every pool
                self._telemetry.errors.labels("tick").inc()
                log.exception("scaling pass failed", error=str(exc))
            self.last_tick = self._clock()
            if self._heartbeat is not None:
                self._heartbeat.beat()
            spent = self.last_tick - began
            self._telemetry.tick.observe(spent)
            self._telemetry.ticks.inc()
            retries, self._retries_seen = self._api.retries - self._retries_seen, self._api.retries
            self._telemetry.api_retries.inc(retries)
            self.ticks += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, period - spent))

    async def tick(self) -> None:
        pools = [s for s in self._registry if not s.deleting]
        self._telemetry.pools.set(len(pools))
        groups: dict[tuple[str, str], tuple[RedisTarget, list[PoolState]]] = {}
        unread: dict[tuple[str, str], Observations] = {}
        for state in pools:
            state.secret_error = None
            if state.pool is None or state.workload is None:
                continue
            try:
                target = await self._redis.target(state.namespace, state.pool.spec)
            except RedisConfigError as exc:
                state.secret_error = str(exc)
                # Still decided (Manual mode needs no Redis); Auto holds on the failed read.
                unread[state.key] = Observations.failed(
                    current_replicas=state.workload.spec_replicas, error=str(exc)
                )
                continue
            groups.setdefault((target.url, target.prefix), (target, []))[1].append(state)
        # Claims change with the specs and with which pools are read: rarely, not every tick.
        grouped = frozenset(s.key for _, members in groups.values() for s in members)
        claims = (self._registry.version, grouped)
        if claims != self._claims:
            flag_queue_conflicts(pools, [(t, members) for t, members in groups.values()])
            self._claims = claims
        await self._redis.retain({url for url, _ in groups})
        observed = await asyncio.gather(
            *(self._observe(t, members) for t, members in groups.values())
        )
        results = {key: obs for part in observed for key, obs in part.items()} | unread
        busy = [
            s
            for s in pools
            if not asleep_and_unchanged(s, results.get(s.key)) and not _first_reconcile_pending(s)
        ]
        self._telemetry.decided.set(len(busy))
        busy.sort(key=lambda s: self.pacer.last_written(s.key))  # status writes: oldest first
        writes = [w for s in busy if (w := self._act_now(s, results.get(s.key))) is not None]
        await asyncio.gather(*writes)
        for state in pools:
            missing = state.deployment_seen and state.workload is None
            if missing and state.pool is not None and state.reconciled_generation is not None:
                self._reconciler.request_repair(state.key, "Deployment missing")

    async def _observe(
        self, target: RedisTarget, members: Sequence[PoolState]
    ) -> dict[tuple[str, str], Observations]:
        queries = []
        for s in members:
            assert s.pool is not None
            assert s.workload is not None
            key = f"{s.namespace}/{s.name}"
            queries.append(PoolQuery(key, tuple(s.pool.spec.queues), s.workload.spec_replicas))
        timeout = max(2.0, 2 * self._settings.tick_seconds)
        try:
            found = await asyncio.wait_for(
                observe_pools(self._redis.client(target), queries, prefix=target.prefix),
                timeout,
            )
        except Exception as exc:  # timeouts, auth and protocol errors: hold, like an outage
            error = f"Redis {target.shown} unreadable: {type(exc).__name__}: {exc}"
            found = {q.key: Observations.failed(current_replicas=q.current_replicas, error=error)
                     for q in queries}  # fmt: skip
        by_key = {f"{s.namespace}/{s.name}": s.key for s in members}
        return {
            by_key[k]: obs
            if obs.error is None
            else replace(obs, error=explained(target, obs.error))
            for k, obs in found.items()
        }

    def _act_now(
        self, state: PoolState, obs: Observations | None
    ) -> Coroutine[Any, Any, None] | None:
        """Decide and work out the status without I/O; what needs the API is returned to await.

        On most ticks a busy pool keeps its size and its status waits its turn (paced): it then
        costs no task and no lock, which would cost more than deciding it.
        """
        if state.lock.locked():
            return self._act(state, obs)  # a reconcile holds it: decide after it, as before
        state.touched, state.last_obs = False, obs
        step = self._decide(state, obs) if obs is not None else None
        if step is not None and step.target != step.current:
            return self._act(state, obs, step=step)
        if step is not None:
            self._hold(state, step.current)
        change = self.status.change(state, obs)
        if change is not None:
            return self._act(state, obs, change=change)
        self._recovered(state)
        return None

    async def _act(
        self,
        state: PoolState,
        obs: Observations | None,
        *,
        step: Step | None = None,
        change: StatusChange | None = None,
    ) -> None:
        """Decide (unless ``step`` or ``change`` says what), scale and write status, locked."""
        async with state.lock:
            try:
                if step is None and change is None:
                    # Cleared first: a watch event arriving while this runs marks it again.
                    state.touched, state.last_obs = False, obs
                    step = self._decide(state, obs) if obs is not None else None
                if step is not None:
                    workload = state.workload
                    if workload is None or workload.spec_replicas != step.current:
                        state.touched = True  # changed while waiting for the lock: next tick
                        return
                    await self._resize(state, step)
                if change is None:
                    change = self.status.change(state, obs)
                if change is not None:
                    await self.status.write(state, change)
            except ApiError as exc:
                state.touched = True  # try the whole pass again next tick
                if exc.status == 404 or isinstance(exc, NotLeading):
                    return  # the pool or its Deployment just went (the watch will tell), or
                    # the Lease was lost midway (the next leader decides again)
                self._telemetry.errors.labels("scale").inc()
                log.warning("pool update failed", namespace=state.namespace, pool=state.name,
                            error=str(exc))  # fmt: skip
                self._events.report(state, kind="api", reason="UpdateFailed", message=str(exc),
                                    resolved="UpdateRecovered")  # fmt: skip
            else:
                self._recovered(state)

    def _recovered(self, state: PoolState) -> None:
        self._events.report(state, kind="api", reason="UpdateFailed", message=None,
                            resolved="UpdateRecovered")  # fmt: skip

    def _decide(self, state: PoolState, obs: Observations) -> Step:
        """The autoscaler's decision for ``state`` (pure, plus the pool's memory of it)."""
        assert state.pool is not None
        assert state.workload is not None
        if obs.error is not None:
            self._telemetry.errors.labels("observe").inc()
        now = self._clock()
        current = state.workload.spec_replicas
        if obs.current_replicas != current:
            # Read before this pool's turn, and the Deployment changed since (a watch event, a
            # repair): decide on the size it has now, or "hold" would set the old one back.
            obs = replace(obs, current_replicas=current)
        if state.history is None:
            state.history = seeded_history(current, now)
        decision = decide(state.pool.spec, obs, state.history, now)
        state.history, state.decision = decision.history, decision
        if obs.error is None:
            state.observation = obs
        if state.secret_error is None:  # else RedisConfigInvalid already says why
            self._events.report(state, kind="redis", reason="RedisUnavailable",
                                message=obs.error, resolved="RedisAvailable")  # fmt: skip
        if decision.replicas >= current:
            state.busy_hold_since = None
        return Step(obs, current, decision.replicas, decision.reason, now)

    def _hold(self, state: PoolState, replicas: int) -> None:
        """The pool stays at ``replicas``: the decision, and the gauges if they moved."""
        state.desired = replicas
        if state.gauged != replicas:  # a label lookup each: not for every pool on every tick
            labels = (state.namespace, state.name)
            self._telemetry.desired.labels(*labels).set(replicas)
            self._telemetry.replicas.labels(*labels).set(replicas)
            state.gauged = replicas

    async def _resize(self, state: PoolState, step: Step) -> None:
        current, target, reason, now = step.current, step.target, step.reason, step.now
        if target < current:
            target, reason = await self._protect_busy_pods(state, step.obs, target, reason,
                                                           now=now)  # fmt: skip
        if target == current:
            self._hold(state, current)
            return
        labels = (state.namespace, state.name)
        state.desired, state.gauged = target, None
        self._telemetry.desired.labels(*labels).set(target)
        ns, name = state.key
        applied = await self._api.apply(
            deployment_path(ns, name), replicas_patch(name, ns, target),
            manager=SCALER_FIELD_MANAGER,
        )  # fmt: skip
        # Only now, applied: a held or failed change must not count against the rate policies.
        assert state.history is not None
        state.history = record_scale(state.history, at=now, before=current, after=target)
        self._registry.set_workload(state.key, workload_of(applied))
        self._telemetry.replicas.labels(*labels).set(target)
        direction = "up" if target > current else "down"
        self._telemetry.decisions.labels(direction).inc()
        state.last_scale_time, state.last_scale_reason = self._wall(), reason
        message = f"{current} -> {target} workers: {reason}"
        self._events.post(
            state, type="Normal", reason=f"Scaled{direction.title()}", message=message
        )
        log.info("scaled", namespace=ns, pool=name, before=current, after=target, reason=reason)

    async def _protect_busy_pods(
        self, state: PoolState, obs: Observations, target: int, reason: str, *, now: float
    ) -> tuple[int, str]:
        """Before shrinking: idle pods cheapest to delete; busy ones held for a bounded time.

        In Auto mode the busy pods hold the size for at most as long as their drain would take
        (the pods' grace period); Manual mode is applied at once (the pods drain on SIGTERM).
        """
        assert state.pool is not None
        ns, name = state.key
        current = state.workload.spec_replicas if state.workload else target
        pods = await self._api.list(pods_path(ns), label_selector=selector_string(name))
        live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
        names = [p["metadata"]["name"] for p in live]
        busy = busy_pods(names, obs.workers)
        spec = state.pool.spec
        max_hold = 0.0 if spec.scaling.mode == "Manual" else termination_grace_seconds(spec)
        if state.busy_hold_since is None:
            state.busy_hold_since = now
        held = now - state.busy_hold_since
        safe = safe_target(current=current, target=target, busy=busy, held_seconds=held,
                           max_hold_seconds=max_hold)  # fmt: skip
        if safe != target:
            reason = f"{reason}; {busy} busy workers hold {safe} (at most {max_hold:.0f} s)"
        else:
            state.busy_hold_since = None  # the next hold starts afresh
            if min(busy, current) > target and max_hold:
                reason = f"{reason}; {busy} busy workers held {held:.0f} s, now drain"
        if safe < current:
            annotations = {
                p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(
                    DELETION_COST_ANNOTATION
                )
                for p in live
            }
            changes = cost_changes(annotations, deletion_costs(names, obs.workers))
            await asyncio.gather(*(self._set_cost(ns, pod, cost) for pod, cost in changes.items()))
        return safe, reason

    async def _set_cost(self, namespace: str, pod: str, cost: str) -> None:
        patch = {"metadata": {"annotations": {DELETION_COST_ANNOTATION: cost}}}
        await self._api.merge_patch(pods_path(namespace, pod), patch, manager=SCALER_FIELD_MANAGER)
