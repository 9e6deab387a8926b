"""Shared fixtures: real servers started for the test session."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubernetes import client

from tests.harness.k8s import KubeCluster
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


# --- the Kubernetes test cluster (kwok nodes), shared by every k8s tier in one session ---


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """A started cluster shared by the session; stopped (and its directory removed) at the end."""
    begin = time.monotonic()
    with KubeCluster(nodes=1) as cluster:
        print(f"kube_cluster: up in {time.monotonic() - begin:.1f}s at {cluster.server}")
        yield cluster


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> Iterator[Any]:
    """An admin ``kubernetes.client.ApiClient``."""
    api = kube_cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def namespace(kube_api: Any) -> Iterator[Callable[..., str]]:
    """Factory for fresh namespaces (optionally labelled); deleted after the test."""
    core = client.CoreV1Api(kube_api)
    created: list[str] = []

    def make(labels: dict[str, str] | None = None) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        created.append(name)
        return name

    yield make
    for name in created:
        core.delete_namespace(name)  # asynchronous; the session cluster is thrown away anyway
