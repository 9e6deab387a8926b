"""Pool observations for the autoscaler, from a real Redis (and a failed read when it is down)."""

from __future__ import annotations

import pytest

from tests.harness.redis_server import RedisServer
from worker_runtime import Queue
from worker_runtime.observing.pool_observer import PoolQuery, observe_pools
from worker_runtime.redis_io.connection import connect

pytestmark = pytest.mark.integration


async def test_observes_each_pool_from_its_queues(redis_url: str) -> None:
    async with Queue("a", redis_url=redis_url) as qa, Queue("b", redis_url=redis_url) as qb:
        await qa.enqueue_many([{}] * 7)
        await qb.enqueue_many([{}] * 3)
        pools = [
            PoolQuery(key="ns/one", queues=("a",), current_replicas=2),
            PoolQuery(key="ns/both", queues=("a", "b"), current_replicas=0),
        ]
        obs = await observe_pools(qa.redis, pools)
    assert obs["ns/one"].backlog == 7
    assert obs["ns/one"].current_replicas == 2
    assert obs["ns/both"].backlog == 10
    assert obs["ns/both"].error is None
    (qobs,) = obs["ns/one"].queues
    assert (qobs.queue, qobs.arrived_total, qobs.finished_total, qobs.in_flight) == ("a", 7, 0, 0)


async def test_unreachable_redis_gives_failed_observations() -> None:
    dead = RedisServer()  # nobody listens on its port
    client = connect(dead.url)
    obs = await observe_pools(client, [PoolQuery(key="p", queues=("a",), current_replicas=3)])
    await client.aclose()
    assert obs["p"].error is not None
    assert "Redis unreachable" in obs["p"].error
    assert obs["p"].current_replicas == 3
