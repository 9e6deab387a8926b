"""`shoal up` runs on the standalone Redis only: the queue core already runs on both kinds."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.harness.redis_server import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    return redis_server.url
