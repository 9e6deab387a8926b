"""Shared fixtures: real servers started for the test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from tests.harness.redis_cluster import RedisClusterServers
from tests.harness.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real Redis for the session; tests isolate themselves by flushing (see redis_url)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster for the session, started only if a test asks for it."""
    with RedisClusterServers() as cluster:
        yield cluster


async def _flush(urls: list[str]) -> None:
    for url in urls:
        client = aioredis.Redis.from_url(url)
        await client.flushall()
        await client.aclose()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """The session Redis (standalone), flushed for this test."""
    await _flush([redis_server.url])
    return redis_server.url


@pytest.fixture(params=["standalone", "cluster"])
async def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The core suite runs on both: a standalone Redis and a 3-master Redis Cluster."""
    if request.param == "standalone":
        server: RedisServer = request.getfixturevalue("redis_server")
        await _flush([server.url])
        return server.url
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    await _flush([node.url for node in cluster.nodes])
    return cluster.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, with AOF on, for tests that stop or restart it."""
    with RedisServer(appendonly=True) as server:
        yield server
