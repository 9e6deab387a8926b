"""What the pool's status tells when its Deployment cannot make pods, and when its spec cannot
be run: on a real API server with the controller-manager's quota and ReplicaSet controllers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.shoal_operator.conftest import Env

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]


def degraded(env: Env, name: str) -> dict[str, Any]:
    c = env.condition(name, "Degraded")
    return c if c.get("status") == "True" else {}


def test_a_quota_that_forbids_pods_shows_in_the_pools_conditions_and_events(
    env: Env, redis_url: str, wait: Wait
) -> None:
    quota = client.V1ResourceQuota(metadata=client.V1ObjectMeta(name="no-pods"),
                                   spec=client.V1ResourceQuotaSpec(hard={"pods": "0"}))  # fmt: skip
    env.core.create_namespaced_resource_quota(env.ns, quota)
    env.start_operator(redis_url)
    env.create_pool("quota", replicas=2, scaling={"mode": "Manual"})
    found = wait(lambda: degraded(env, "quota").get("reason") == "ReplicaFailure"
                 and degraded(env, "quota"), 30, "Degraded=True ReplicaFailure")  # fmt: skip
    assert found["message"].startswith("Deployment quota: ")
    assert "forbidden" in found["message"]
    assert "quota" in found["message"].removeprefix("Deployment quota: ")
    assert env.condition("quota", "Ready")["status"] == "False"
    wait(lambda: env.events("ReplicaFailure"), 10, "a Warning Event")
    table = env.cluster.kubectl("get", "wp", "quota", "-n", env.ns).stdout.split("\n")
    header, row = table[0].split(), table[1].split()
    assert header[:4] == ["NAME", "QUEUES", "READY", "WORKERS"]
    assert row[2] == "False"  # the Ready printer column is the Ready condition

    env.core.delete_namespaced_resource_quota("no-pods", env.ns)
    wait(lambda: env.condition("quota", "Degraded").get("status") == "False", 60,
         "recovered once pods can be made")  # fmt: skip
    wait(lambda: env.events("DeploymentRecovered"), 10, "a recovery Event")


def test_an_invalid_spec_sets_observed_generation(env: Env, redis_url: str, wait: Wait) -> None:
    env.start_operator(redis_url)
    env.create_pool("gen", replicas=1, scaling={"mode": "Manual"})
    wait(lambda: env.status("gen").get("observedGeneration") == 1, 10, "generation 1 observed")
    # Accepted by the API server (RE2's \S takes a no-break space) but not by Shoal's own
    # validation: the spec cannot be run, and status says so for this generation.
    env.patch_pool("gen", {"image": "registry.invalid/worker:1\u00a0x"})
    assert env.pool("gen")["metadata"]["generation"] == 2
    found = wait(lambda: degraded(env, "gen").get("reason") == "InvalidSpec"
                 and env.status("gen"), 10, "Degraded InvalidSpec")  # fmt: skip
    assert found["observedGeneration"] == 2
    for c in found["conditions"]:
        assert c["observedGeneration"] == 2, c
    assert "spec.image" in degraded(env, "gen")["message"]


def test_a_pod_security_rejection_shows_in_the_pools_conditions(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    # The namespace enforces the restricted profile: root pods are refused at creation.
    env.create_pool("root", replicas=1, scaling={"mode": "Manual"},
                    podSecurityContext={"runAsUser": 0, "runAsNonRoot": False})  # fmt: skip
    found = wait(lambda: degraded(env, "root").get("reason") == "ReplicaFailure"
                 and degraded(env, "root"), 30, "Degraded=True ReplicaFailure")  # fmt: skip
    assert "violates PodSecurity" in found["message"]
    assert env.pods("root") == []
