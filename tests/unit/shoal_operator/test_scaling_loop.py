"""The scaling loop's decisions against the Deployment as it is when they are applied."""

from __future__ import annotations

from typing import Any

from shoal_operator.conditions import Workload
from shoal_operator.events import EventRecorder
from shoal_operator.kube import KubeApi
from shoal_operator.reconciler import Reconciler
from shoal_operator.redis_clients import RedisClients
from shoal_operator.scaling_loop import ScalingLoop, asleep_and_unchanged
from shoal_operator.settings import load_settings
from shoal_operator.state import Registry
from shoal_operator.telemetry import Telemetry
from worker_runtime.core.observations import Observations


class Api:
    """Stands in for the API server: records writes, lists no pods."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, Any]] = []
        self.retries = 0

    async def apply(self, path: str, body: Any, *, manager: str, force: bool = True) -> Any:
        self.writes.append(("apply", path, body))
        return {"spec": body["spec"], "status": {}}

    async def merge_patch(self, path: str, body: Any, *, manager: str | None = None) -> Any:
        self.writes.append(("merge", path, body))
        return {}

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Any]:
        return []

    async def create(self, path: str, body: Any) -> Any:
        return {}


def loop_with(api: Api) -> tuple[ScalingLoop, Registry]:
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
