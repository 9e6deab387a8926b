"""Fixtures for tests against a real Kubernetes control plane (kwok nodes).

The binaries are built once per machine into a per-user cache by scripts/k8s-binaries.sh;
set SHOAL_K8S_NO_BUILD=1 to fail fast instead of building when they are missing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.harness.k8s import KubeCluster


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so this directory runs under --strict-markers on its own.
    config.addinivalue_line(
        "markers", "k8s: needs the Kubernetes test cluster (tests/harness/k8s.py)"
    )


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
