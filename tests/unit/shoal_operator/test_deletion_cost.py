"""Which pods go first on scale-down (pure)."""

from __future__ import annotations

from shoal_operator.deletion_cost import (
    IDLE_COST,
    NO_HEARTBEAT_COST,
    busy_pods,
    cost_changes,
    deletion_costs,
    pod_loads,
    safe_target,
)
from worker_runtime.core.observations import WorkerLoad

PODS = ["a", "b", "c", "d"]
LOADS = (WorkerLoad("a", 3), WorkerLoad("b", 0), WorkerLoad("c", 1), WorkerLoad("elsewhere", 9))


def test_idle_pods_cost_less_than_busy_ones_and_silent_pods_least() -> None:
    costs = deletion_costs(PODS, LOADS)
    assert costs == {"a": 3, "b": IDLE_COST, "c": 1, "d": NO_HEARTBEAT_COST}
    order = sorted(costs, key=costs.__getitem__)  # the ReplicaSet removes lowest first
    assert order == ["d", "b", "c", "a"]


def test_loads_of_several_workers_in_one_pod_add_up() -> None:
    loads = (WorkerLoad("a", 2), WorkerLoad("a", 5))
    assert pod_loads(["a"], loads) == {"a": 7}
    assert deletion_costs(["a"], loads) == {"a": 7}


def test_busy_pods_counts_only_this_pools_pods_with_jobs() -> None:
    assert busy_pods(PODS, LOADS) == 2


def test_scale_down_never_below_busy_pods() -> None:
    assert safe_target(current=4, target=1, busy=2) == 2
    assert safe_target(current=4, target=3, busy=2) == 3
    assert safe_target(current=4, target=0, busy=0) == 0
    assert safe_target(current=2, target=0, busy=5) == 2  # never above the current size
    assert safe_target(current=2, target=6, busy=0) == 6  # scale-up untouched


def test_only_changed_annotations_are_written() -> None:
    costs = {"a": 3, "b": 0, "c": 1}
    current = {"a": "3", "b": None, "c": "7"}
    assert cost_changes(current, costs) == {"b": "0", "c": "1"}
    assert cost_changes({}, costs) == {}  # pods gone meanwhile are skipped
