"""Which workers go first on scale-down (pure): pod-deletion-cost from heartbeats.

The ReplicaSet controller removes pods with the lowest ``controller.kubernetes.io/pod-deletion-
cost`` first (after unscheduled, pending and not-ready ones). Before lowering replicas the
operator sets it from each pod's heartbeat: pods without a heartbeat (starting, or gone quiet)
cost least, idle pods next, busy pods by the jobs they run. And it holds replicas at the number
of busy pods for a while (at most the pods' grace period): a removed busy worker drains on
SIGTERM anyway, but while the hold lasts its jobs may finish and it may go idle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from worker_runtime.core.observations import WorkerLoad

NO_HEARTBEAT_COST = -1
IDLE_COST = 0
MAX_COST = 1_000_000  # the annotation is an int32; in-flight counts stay far below anyway


def pod_loads(pods: Iterable[str], loads: Sequence[WorkerLoad]) -> dict[str, int | None]:
    """Jobs in flight per pod (summed over its workers), None for a pod with no heartbeat."""
    names = set(pods)
    result: dict[str, int | None] = dict.fromkeys(sorted(names))
    for load in loads:
        if load.name in names:
            result[load.name] = (result[load.name] or 0) + load.in_flight
    return result


def deletion_costs(pods: Iterable[str], loads: Sequence[WorkerLoad]) -> dict[str, int]:
    """The deletion cost each pod should carry: lower goes first."""
    costs = {}
    for pod, in_flight in pod_loads(pods, loads).items():
        if in_flight is None:
            costs[pod] = NO_HEARTBEAT_COST
        else:
            costs[pod] = min(max(in_flight, IDLE_COST), MAX_COST)
    return costs


def busy_pods(pods: Iterable[str], loads: Sequence[WorkerLoad]) -> int:
    return sum(1 for n in pod_loads(pods, loads).values() if n)


def safe_target(
    *,
    current: int,
    target: int,
    busy: int,
    held_seconds: float = 0.0,
    max_hold_seconds: float = math.inf,
) -> int:
    """Scale-down not below the busy pods (nor above the current size), for a bounded time.

    Under steady load with jobs spread over every pod, every pod stays busy: an unbounded hold
    would keep a pool at its peak forever. After ``max_hold_seconds`` (as long as a drain takes:
    the pods' grace period) the scale-down goes ahead and the removed pods drain on SIGTERM.
    """
    if target >= current or held_seconds >= max_hold_seconds:
        return target
    return max(target, min(busy, current))


def cost_changes(annotations: Mapping[str, str | None], costs: Mapping[str, int]) -> dict[str, str]:
    """The annotation values to write: only pods whose cost differs from what they carry."""
    return {
        pod: str(cost)
        for pod, cost in costs.items()
        if pod in annotations and annotations[pod] != str(cost)
    }
