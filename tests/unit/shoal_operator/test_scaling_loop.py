"""The scaling loop's decisions against the Deployment as it is when they are applied."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shoal_operator.conditions import Workload
from shoal_operator.events import EventRecorder
from shoal_operator.kube import ApiError, KubeApi
from shoal_operator.reconciler import Reconciler
from shoal_operator.redis_clients import RedisClients
from shoal_operator.scaling_loop import ScalingLoop, asleep_and_unchanged, flag_queue_conflicts
from shoal_operator.settings import load_settings
from shoal_operator.state import Registry
from shoal_operator.telemetry import Telemetry
from worker_runtime.core.observations import Observations, QueueObservation, WorkerLoad


class Api:
    """Stands in for the API server: records writes, lists ``pods``; ``refuse`` fails applies."""

    def __init__(self, pods: tuple[str, ...] = ()) -> None:
        self.writes: list[tuple[str, str, Any]] = []
        self.retries = 0
        self.pods = pods
        self.refuse = False

    async def apply(self, path: str, body: Any, *, manager: str, force: bool = True) -> Any:
        if self.refuse:
            raise ApiError(409, "Conflict", "try again", method="PATCH", path=path)
        self.writes.append(("apply", path, body))
        return {"spec": body["spec"], "status": {}}

    async def merge_patch(
        self, path: str, body: Any, *, manager: str | None = None, decoded: bool = True
    ) -> Any:
        self.writes.append(("merge", path, body))
        return {}

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Any]:
        return [{"metadata": {"name": pod}} for pod in self.pods]

    async def create(self, path: str, body: Any) -> Any:
        return {}


def loop_with(
    api: Api, clock: Callable[[], float] = time.monotonic
) -> tuple[ScalingLoop, Registry]:
    settings = load_settings()
    telemetry = Telemetry()
    registry = Registry()
    fake: KubeApi = api  # type: ignore[assignment]
    reconciler = Reconciler(api=fake, registry=registry, settings=settings, telemetry=telemetry)
    loop = ScalingLoop(
        settings=settings,
        registry=registry,
        api=fake,
        redis=RedisClients(settings, fake),
        reconciler=reconciler,
        events=EventRecorder(fake, telemetry, instance=None),
        telemetry=telemetry,
        clock=clock,
    )
    return loop, registry


POOL = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "WorkerPool",
    "metadata": {"name": "emails", "namespace": "team", "uid": "u-1", "generation": 1},
    "spec": {"image": "registry.example/emails:1.4", "queues": ["emails"]},
}


async def test_a_failed_read_holds_the_size_the_deployment_has_when_acting() -> None:
    # Read with 2 replicas; by the time the pool's turn comes its Deployment has 3.
    api = Api()
    loop, registry = loop_with(api)
    state = registry.upsert(POOL)
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=3, replicas=3, ready_replicas=3))
    obs = Observations.failed(current_replicas=2, error="Redis r unreadable: TimeoutError")
    await loop._act(state, obs)
    assert not [w for w in api.writes if w[0] == "apply"]  # held at 3, not set back to 2
    assert state.desired == 3


def applied(api: Api) -> list[int]:
    return [w[2]["spec"]["replicas"] for w in api.writes if w[0] == "apply"]


def pool_with(**spec: Any) -> dict[str, Any]:
    return {**POOL, "spec": {**POOL["spec"], **spec}}


async def test_manual_mode_is_applied_while_redis_is_unreadable() -> None:
    api = Api()
    loop, registry = loop_with(api)
    state = registry.upsert(pool_with(replicas=3, scaling={"mode": "Manual"}))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=1, replicas=1, ready_replicas=1))
    await loop._act(state, Observations.failed(current_replicas=1, error="connection refused"))
    assert applied(api) == [3]


def idle_queue() -> tuple[QueueObservation, ...]:
    return (QueueObservation("emails"),)


BUSY = tuple(WorkerLoad(f"pod-{i}", 1) for i in range(4))
FAST_DOWN = {"scaleDownStabilizationSeconds": 0, "minReplicas": 1}


async def test_busy_pods_hold_a_scale_down_no_longer_than_their_drain() -> None:
    now = [100.0]
    api = Api(pods=tuple(w.name for w in BUSY))
    loop, registry = loop_with(api, clock=lambda: now[0])
    state = registry.upsert(pool_with(timeoutSeconds=5, scaling=FAST_DOWN))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=4, replicas=4, ready_replicas=4))
    obs = Observations(current_replicas=4, queues=idle_queue(), workers=BUSY)
    await loop._act(state, obs)
    assert applied(api) == []
    assert state.desired == 4
    now[0] += 19  # < timeoutSeconds 5 + 15 s margin
    await loop._act(state, obs)
    assert applied(api) == []
    now[0] += 1  # the drain bound: scale down, the removed busy pods drain
    await loop._act(state, obs)
    assert applied(api) == [1]
    assert "busy workers held 20 s, now drain" in (state.last_scale_reason or "")


async def test_manual_scale_down_is_not_held_by_busy_pods() -> None:
    api = Api(pods=tuple(w.name for w in BUSY))
    loop, registry = loop_with(api)
    state = registry.upsert(pool_with(replicas=1, scaling={"mode": "Manual"}))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=4, replicas=4, ready_replicas=4))
    await loop._act(state, Observations(current_replicas=4, queues=idle_queue(), workers=BUSY))
    assert applied(api) == [1]


async def test_history_records_only_applied_scale_events() -> None:
    now = [100.0]
    api = Api(pods=tuple(w.name for w in BUSY))
    loop, registry = loop_with(api, clock=lambda: now[0])
    state = registry.upsert(pool_with(scaling=FAST_DOWN))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=4, replicas=4, ready_replicas=4))
    await loop._act(state, Observations(current_replicas=4, queues=idle_queue(), workers=BUSY))
    assert state.history is not None
    assert state.history.events == ()
    api.refuse = True
    now[0] += 2
    await loop._act(state, Observations(current_replicas=4, queues=idle_queue()))
    assert state.history.events == ()  # the write failed
    api.refuse = False
    now[0] += 2
    await loop._act(state, Observations(current_replicas=4, queues=idle_queue()))
    assert applied(api) == [1]
    assert [(e.before, e.after) for e in state.history.events] == [(4, 1)]


def test_an_invalid_spec_is_observed_at_its_generation() -> None:
    loop, registry = loop_with(Api())
    state = registry.upsert(POOL)
    state.reconciled_generation = 1
    bad = {**POOL, "metadata": {**POOL["metadata"], "generation": 2}, "spec": {"image": "i"}}
    state = registry.upsert(bad)
    assert loop.status.facts(state, None).observed_generation == 2


def test_replicas_written_to_an_auto_pool_are_reported() -> None:
    loop, registry = loop_with(Api())
    state = registry.upsert(pool_with(replicas=5))
    assert loop.status.facts(state, None).ignored_replicas == 5
    state = registry.upsert(pool_with(replicas=5, scaling={"mode": "Manual"}))
    assert loop.status.facts(state, None).ignored_replicas is None


def pool_in(namespace: str, name: str, queues: list[str], **redis: Any) -> dict[str, Any]:
    spec = {
        "image": "registry.example/w:1",
        "queues": queues,
        **({"redis": redis} if redis else {}),
    }
    meta = {"name": name, "namespace": namespace, "uid": f"u-{namespace}-{name}"}
    return {"apiVersion": "shoal.dev/v1alpha1", "kind": "WorkerPool", "metadata": meta,
            "spec": spec}  # fmt: skip


async def test_pools_sharing_a_queue_on_one_keyspace_are_flagged_naming_each_other() -> None:
    settings = load_settings(redis_url="redis://shared:6379/0")
    registry = Registry()
    fake: KubeApi = Api()  # type: ignore[assignment]
    clients = RedisClients(settings, fake)
    states = [
        registry.upsert(pool_in("team-a", "emails", ["emails", "sms"])),
        registry.upsert(pool_in("team-b", "emails", ["emails"])),
        registry.upsert(pool_in("team-c", "emails", ["emails"], keyPrefix="team-c")),
        registry.upsert(pool_in("team-d", "emails", ["emails"], url="redis://other:6379/0")),
    ]
    groups: dict[tuple[str, str], tuple[Any, list[Any]]] = {}
    for s in states:
        target = await clients.target(s.namespace, s.pool.spec)
        groups.setdefault((target.url, target.prefix), (target, []))[1].append(s)
    flag_queue_conflicts(states, list(groups.values()))
    a, b, c, d = states
    assert a.conflict is not None
    assert a.conflict.startswith("queue emails on redis://shared:6379/0 (key prefix shoal)")
    assert "pool team-b/emails" in a.conflict
    assert "spec.redis.keyPrefix" in a.conflict
    assert b.conflict is not None
    assert "pool team-a/emails" in b.conflict
    assert c.conflict is None  # its own prefix
    assert d.conflict is None  # another Redis
    assert b.touched

    # team-b moves to its own prefix: both are cleared, and their status is redone.
    b.touched = a.touched = False
    flag_queue_conflicts(states, [(t, [m for m in ms if m is not b]) for t, ms in groups.values()])
    assert a.conflict is None
    assert a.touched


async def test_a_pool_idle_at_a_floor_of_one_costs_nothing_per_tick() -> None:
    api = Api()
    loop, registry = loop_with(api)
    pool = {**POOL, "spec": {**POOL["spec"], "scaling": {"minReplicas": 1}}}  # type: ignore[dict-item]
    state = registry.upsert(pool)
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=1, replicas=1, ready_replicas=1))
    idle = Observations(current_replicas=1)
    await loop._act(state, idle)  # the first pass decides and writes status
    assert state.desired == 1
    assert asleep_and_unchanged(state, idle)  # then nothing more while nothing changes
    assert not asleep_and_unchanged(state, Observations(current_replicas=1, error="down"))


def merges(api: Api) -> list[dict[str, Any]]:
    return [w[2]["status"] for w in api.writes if w[0] == "merge"]


def waiting(jobs: int) -> Observations:
    return Observations(
        current_replicas=1, queues=(QueueObservation("emails", waiting=jobs, arrived_total=jobs),)
    )


async def test_a_busy_pool_at_its_size_waiting_for_its_status_turn_needs_no_api_call() -> None:
    now = [100.0]
    api = Api()
    loop, registry = loop_with(api, clock=lambda: now[0])
    state = registry.upsert(pool_with(scaling={"maxReplicas": 1}))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=1, replicas=1, ready_replicas=1))
    first = loop._act_now(state, waiting(5))
    assert first is not None  # its first status: conditions and all
    await first
    assert merges(api)[-1]["backlog"] == 5
    now[0] += 1
    assert loop._act_now(state, waiting(6)) is None  # a live figure alone, written too recently
    assert state.touched  # so it is looked at again on the next tick
    assert state.desired == 1
    assert len(merges(api)) == 1
    now[0] += 5
    turn = loop._act_now(state, waiting(7))
    assert turn is not None
    await turn
    assert merges(api)[-1]["backlog"] == 7
    assert set(merges(api)[-1]) >= {"backlog", "conditions"}  # the whole status, as before
    now[0] += 1
    assert loop._act_now(state, waiting(7)) is None  # nothing changed at all
    registry.set_workload(state.key, Workload(spec_replicas=1, replicas=1, ready_replicas=0))
    now[0] += 1
    prompt = loop._act_now(state, waiting(8))  # a condition changes: written at once
    assert prompt is not None
    await prompt
    ready = next(c for c in merges(api)[-1]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert merges(api)[-1]["backlog"] == 8


async def test_a_decision_is_not_applied_to_a_deployment_that_changed_before_its_turn() -> None:
    api = Api()
    loop, registry = loop_with(api)
    state = registry.upsert(pool_with(scaling={"maxReplicas": 3}))
    state.reconciled_generation = 1
    registry.set_workload(state.key, Workload(spec_replicas=1, replicas=1, ready_replicas=1))
    scale = loop._act_now(state, waiting(500))
    assert scale is not None
    # A watch event (someone else's write) lands before the write is sent: decide again.
    registry.set_workload(state.key, Workload(spec_replicas=3, replicas=3, ready_replicas=3))
    state.touched = False
    await scale
    assert applied(api) == []
    assert state.touched
