"""How often a pool's live figures (backlog, inFlight, oldest job age) reach its status.

Conditions, replicas and scale decisions are written as soon as they change. The live figures
alone move on every tick of a busy queue: written each time, 500 busy pools would be 500 status
writes per second to etcd. So a write that changes only them waits until the pool's last write
is ``min_interval`` old, and all such writes share a budget of ``per_second`` (a token bucket,
which prompt writes draw from too); pools wait their turn longest-unwritten first (the loop
visits them in that order). With the defaults (5 s, 50/s), 500 pools whose backlog moves every
second are each rewritten every 10 s, and 1,000 idle pools cost no writes at all.

The bucket holds ``burst_seconds`` of budget, more than one tick's worth: the loop spends it
once per tick, and a tick that comes a little late must find its whole share (capped at exactly
one second's worth, a 1.03 s tick lost 3 % of the budget, and every pool waited that much longer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from shoal_operator.state import PoolKey

LIVE_FIELDS = frozenset({"backlog", "inFlight", "oldestJobAgeSeconds"})
PER_SECOND = 50.0
MIN_INTERVAL = 5.0
BURST_SECONDS = 1.5


def live_only(patch: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether status merge ``patch`` changes nothing but the live figures of ``old`` (pure)."""
    old = old or {}
    changed = {k for k, v in patch.items() if old.get(k) != v}
    return changed <= LIVE_FIELDS


class StatusPacer:
    def __init__(
        self,
        *,
        per_second: float = PER_SECOND,
        min_interval: float = MIN_INTERVAL,
        burst_seconds: float = BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second, self.min_interval = per_second, min_interval
        self._capacity = per_second * burst_seconds
        self._clock = clock
        self._tokens = per_second
        self._refilled = clock()
        self._written: dict[PoolKey, float] = {}

    def _refill(self, now: float) -> None:
        elapsed, self._refilled = now - self._refilled, now
        self._tokens = min(self._capacity, self._tokens + elapsed * self.per_second)

    def allow(self, key: PoolKey, *, prompt: bool) -> bool:
        """May ``key``'s status be written now? ``prompt`` writes (conditions, replicas) always
        may, and draw on the budget like the others (down to one second's worth of debt)."""
        now = self._clock()
        self._refill(now)
        recent = now - self._written.get(key, -1e18) < self.min_interval
        if not prompt and (recent or self._tokens < 1):
            return False
        self._tokens = max(-self.per_second, self._tokens - 1)
        self._written[key] = now
        return True

    def last_written(self, key: PoolKey) -> float:
        """When ``key``'s status was last written (monotonic; never: -inf), to order pools."""
        return self._written.get(key, float("-inf"))

    def forget(self, key: PoolKey) -> None:
        self._written.pop(key, None)
