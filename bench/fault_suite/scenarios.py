"""Every scenario by name, in the table's order."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from bench.fault_suite.fuzz import fuzz
from bench.fault_suite.kit import Row
from bench.fault_suite.redis_faults import redis_crash, redis_freeze, redis_oom, redis_restart
from bench.fault_suite.worker_faults import garbage_corpus, misbehaving_processors, sigkill_storm

Scenario = Callable[..., Awaitable[Row]]

SCENARIOS: dict[str, Scenario] = {
    "sigkill-storm": sigkill_storm,
    "redis-restart": redis_restart,
    "redis-kill-9": redis_crash,
    "redis-freeze-5": functools.partial(redis_freeze, 5),
    "redis-freeze-15": functools.partial(redis_freeze, 15),
    "redis-freeze-30": functools.partial(redis_freeze, 30),
    "redis-oom": redis_oom,
    "garbage-corpus": garbage_corpus,
    "misbehaving-processors": misbehaving_processors,
    "fuzz-codec-manifest": fuzz,
}
#: Too long for CI (a 30 s freeze is the same code path as the 5 s one): full runs only.
FULL_ONLY = frozenset({"redis-freeze-15", "redis-freeze-30"})
