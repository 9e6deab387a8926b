"""Per-pool key prefixes and queue conflicts (issue 12, item 10), on a real API server and a
real Redis: pools that share a queue on one keyspace are told so, and a pool with its own
spec.redis.keyPrefix scales on, and its worker drains, only the jobs enqueued under it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.shoal_operator.conftest import Env
from tests.integration.shoal_operator.redis_access import enqueue, start_worker_as_rendered, stop

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
FAST = {"cooldownSeconds": 2, "scaleDownStabilizationSeconds": 1}


def test_pools_sharing_a_queue_are_flagged_and_a_key_prefix_separates_them(
    env: Env, redis_url: str, wait: Wait, tmp_path: Path
) -> None:
    env.start_operator(redis_url)
    env.create_pool("a", queues=["shared"])
    env.create_pool("b", queues=["shared"])
    for pool, other in (("a", "b"), ("b", "a")):
        found = wait(lambda p=pool: env.condition(p, "Degraded").get("reason") == "QueueConflict"
                     and env.condition(p, "Degraded"), 15, f"{pool} QueueConflict")  # fmt: skip
        assert found["status"] == "True"
        assert f"queue shared on {redis_url} (key prefix shoal)" in found["message"]
        assert f"pool {env.ns}/{other}" in found["message"]
    wait(lambda: env.events("QueueConflict"), 5, "a QueueConflict Event")

    env.create_pool("c", queues=["shared"], redis={"keyPrefix": "team-c"},
                    scaling={"maxReplicas": 2, **FAST})  # fmt: skip
    enqueue(redis_url, "shared", 1000, prefix="team-c")
    wait(lambda: env.status("c").get("backlog") == 1000, 15, "c's backlog under team-c")
    wait(lambda: env.replicas("c") == 2, 15, "c scaled on its own prefix's backlog")
    assert env.condition("c", "Degraded")["status"] == "False"
    assert env.status("a").get("backlog") == 0  # the default prefix's queue is empty
    assert env.replicas("a") == 0

    # b moves to its own prefix: the conflict clears on both.
    env.patch_pool("b", {"redis": {"keyPrefix": "team-b"}})
    for pool in ("a", "b"):
        wait(lambda p=pool: env.condition(p, "Degraded").get("status") == "False", 15,
             f"{pool} conflict cleared")  # fmt: skip

    worker = start_worker_as_rendered(env, "c", "shared", tmp_path)
    try:
        wait(lambda: env.status("c").get("backlog") == 0, 60, "c's worker drained team-c")
    finally:
        stop(worker)
