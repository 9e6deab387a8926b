"""Which workers to stop when a pool shrinks: the cheapest to lose first (pure).

The local counterpart of the operator's pod-deletion-cost: a slot with no process (waiting out
a restart backoff) costs nothing, then idle workers (heartbeat says 0 jobs in flight), then
workers that have not reported yet, then busy ones, least loaded first. Among equals the
newest goes first, as a ReplicaSet does. Stopping is always a drain (SIGTERM), so even a busy
worker finishes its jobs; the order only keeps drains short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    has_process: bool  # False: the slot is waiting to restart a crashed process
    in_flight: int | None  # jobs running, from its heartbeat; None before the first heartbeat
    started_at: float  # when its process started (any monotonic origin)


def _cost(c: Candidate) -> tuple[int, int, float, str]:
    if not c.has_process:
        rank, load = 0, 0
    elif c.in_flight == 0:
        rank, load = 1, 0
    elif c.in_flight is None:
        rank, load = 2, 0
    else:
        rank, load = 3, c.in_flight
    return rank, load, -c.started_at, c.name


def choose_to_stop(candidates: Iterable[Candidate], count: int) -> list[str]:
    """Names of the ``count`` workers to stop, cheapest first."""
    if count <= 0:
        return []
    return [c.name for c in sorted(candidates, key=_cost)[:count]]
