"""Invalid WorkerPools are refused by the API server itself, with the field named.

Each case breaks one field of the design notes: out of bounds, wrong type, bad pattern or enum,
a cross-field (CEL) rule, an unknown field, a missing required field. Created with strict field
validation (what `kubectl apply` does by default), so unknown fields are refused, not pruned.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness.k8s import KubeCluster
from tests.integration.shoal_operator.conftest import GROUP, IMAGE, PLURAL, VERSION

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

VALID: dict[str, Any] = {"image": IMAGE, "queues": ["emails"]}

# (id, change to the valid spec: {path: value} with None = delete, the field the error names)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("image-missing", {"image": None}, "spec.image"),
    ("image-empty", {"image": ""}, "spec.image"),
    ("image-type", {"image": 7}, "spec.image"),
    ("queues-missing", {"queues": None}, "spec.queues"),
    ("queues-empty", {"queues": []}, "spec.queues"),
    ("queues-too-many", {"queues": [f"q{i}" for i in range(33)]}, "spec.queues"),
    ("queue-pattern", {"queues": ["Not A Queue"]}, "spec.queues[0]"),
    ("queues-duplicate", {"queues": ["a", "a"]}, "spec.queues[1]"),
    ("app-pattern", {"app": "no colon here"}, "spec.app"),
    ("concurrency-zero", {"concurrency": 0}, "spec.concurrency"),
    ("concurrency-high", {"concurrency": 10001}, "spec.concurrency"),
    ("concurrency-type", {"concurrency": "10"}, "spec.concurrency"),
    ("max-jobs-zero", {"maxJobsPerWorker": 0}, "spec.maxJobsPerWorker"),
    ("timeout-zero", {"timeoutSeconds": 0}, "spec.timeoutSeconds"),
    ("timeout-high", {"timeoutSeconds": 86401}, "spec.timeoutSeconds"),
    ("attempts-zero", {"retry": {"attempts": 0}}, "spec.retry.attempts"),
    ("backoff-type", {"retry": {"backoff": {"type": "linear"}}}, "spec.retry.backoff.type"),
    ("backoff-delay", {"retry": {"backoff": {"delaySeconds": -1}}},
     "spec.retry.backoff.delaySeconds"),
    ("backoff-max-below-delay", {"retry": {"backoff": {"delaySeconds": 10, "maxDelaySeconds": 5}}},
     "spec.retry.backoff.maxDelaySeconds"),
    ("rate-max-zero", {"rateLimit": {"max": 0}}, "spec.rateLimit.max"),
    ("rate-max-missing", {"rateLimit": {"perSeconds": 1}}, "spec.rateLimit.max"),
    ("rate-window-zero", {"rateLimit": {"max": 5, "perSeconds": 0}}, "spec.rateLimit.perSeconds"),
    ("redis-password-inline", {"redis": {"url": "redis://user:secret@redis:6379/0"}},
     "spec.redis.url"),
    ("redis-url-and-host", {"redis": {"url": "redis://redis:6379/0", "host": "redis"}},
     "spec.redis.url"),
    ("redis-password-query", {"redis": {"url": "redis://redis:6379/0?password=secret"}},
     "spec.redis.url"),
    ("redis-password-query-later", {"redis": {"url": "rediss://r/0?db=1&password=secret"}},
     "spec.redis.url"),
    ("redis-key-prefix-hash-tag", {"redis": {"keyPrefix": "team{a}"}},
     "spec.redis.keyPrefix: Invalid value"),
    ("redis-tls-on-default", {"redis": {"tls": True}}, "spec.redis.tls"),
    ("volume-redis-ca", {"volumes": [{"name": "redis-ca", "emptyDir": {}}]},
     "spec.volumes[0].name"),
    ("redis-username-with-url", {"redis": {"url": "redis://r:6379/0", "username": "app"}},
     "spec.redis.username"),
    ("redis-port", {"redis": {"host": "redis", "port": 70000}}, "spec.redis.port"),
    ("redis-secret-key-missing", {"redis": {"url": "redis://r:6379/0",
                                            "passwordSecretRef": {"name": "redis"}}},
     "spec.redis.passwordSecretRef.key"),
    ("redis-tls-type", {"redis": {"url": "rediss://r:6379/0", "tls": "yes"}}, "spec.redis.tls"),
    ("mode-enum", {"scaling": {"mode": "Sometimes"}}, "spec.scaling.mode"),
    ("min-negative", {"scaling": {"minReplicas": -1}}, "spec.scaling.minReplicas"),
    ("max-zero", {"scaling": {"maxReplicas": 0}}, "spec.scaling.maxReplicas"),
    ("min-above-max", {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
     "spec.scaling.maxReplicas"),
    ("drain-zero", {"scaling": {"targetDrainSeconds": 0}}, "spec.scaling.targetDrainSeconds"),
    ("activation-zero", {"scaling": {"activationBacklog": 0}}, "spec.scaling.activationBacklog"),
    ("cooldown-negative", {"scaling": {"cooldownSeconds": -1}}, "spec.scaling.cooldownSeconds"),
    ("stabilization-high", {"scaling": {"scaleDownStabilizationSeconds": 3601}},
     "spec.scaling.scaleDownStabilizationSeconds"),
    ("backlog-per-replica-zero", {"scaling": {"targetBacklogPerReplica": 0}},
     "spec.scaling.targetBacklogPerReplica"),
    ("replicas-negative", {"replicas": -1}, "spec.replicas"),
    ("cpu-not-a-quantity", {"resources": {"requests": {"cpu": "lots"}}},
     "spec.resources.requests.cpu"),
    ("request-above-limit", {"resources": {"requests": {"memory": "2Gi"},
                                           "limits": {"memory": "1Gi"}}},
     "spec.resources.requests"),
    ("env-name", {"env": [{"name": "1 BAD", "value": "x"}]}, "spec.env[0].name"),
    ("env-redis-password-inline", {"env": [{"name": "REDIS_PASSWORD", "value": "hunter2"}]},
     "spec.env[0].value"),
    ("env-reserved-redis-url", {"env": [{"name": "REDIS_URL", "value": "redis://evil:6379/0"}]},
     "spec.env[0].name"),
    ("env-reserved-queues", {"env": [{"name": "LOG_LEVEL", "value": "debug"},
                                     {"name": "WORKER_QUEUES", "value": "other"}]},
     "spec.env[1].name"),
    ("env-reserved-health-port", {"env": [{"name": "HEALTH_PORT", "value": "1"}]},
     "spec.env[0].name"),
    ("node-selector-type", {"nodeSelector": {"disk": 1}}, "spec.nodeSelector.disk"),
    ("toleration-operator", {"tolerations": [{"key": "k", "operator": "Maybe"}]},
     "spec.tolerations[0].operator"),
    ("service-account-pattern", {"serviceAccountName": "Bad_Name"}, "spec.serviceAccountName"),
    ("pull-policy-enum", {"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
    ("unknown-field", {"colour": "blue"}, "spec.colour"),
    ("unknown-nested-field", {"scaling": {"speed": "fast"}}, "spec.scaling.speed"),
]  # fmt: skip


def spec_with(change: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    for key, value in change.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def custom(kube_cluster: KubeCluster, crd: None) -> Any:
    api = kube_cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="invalid-pools")))
    yield client.CustomObjectsApi(api)
    core.delete_namespace("invalid-pools")
    api.close()


def test_the_valid_base_is_accepted(custom: Any) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool",
            "metadata": {"name": "valid"}, "spec": VALID}  # fmt: skip
    custom.create_namespaced_custom_object(GROUP, VERSION, "invalid-pools", PLURAL, body,
                                           field_validation="Strict")  # fmt: skip


@pytest.mark.parametrize(("case", "change", "field"), CASES, ids=[c[0] for c in CASES])
def test_invalid_manifest_is_refused_naming_the_field(
    custom: Any, case: str, change: dict[str, Any], field: str
) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool",
            "metadata": {"name": case}, "spec": spec_with(change)}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(GROUP, VERSION, "invalid-pools", PLURAL, body,
                                               field_validation="Strict")  # fmt: skip
    assert refused.value.status in (400, 422)
    message = json.loads(refused.value.body)["message"]
    assert field in message, message
    assert "\n" not in message.strip()


def test_the_default_redis_with_the_pools_own_secrets_and_prefix_is_accepted(custom: Any) -> None:
    spec = {**VALID, "redis": {"passwordSecretRef": {"name": "redis", "key": "password"},
                               "caSecretRef": {"name": "redis", "key": "ca.crt"},
                               "keyPrefix": "team-a"}}  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool",
            "metadata": {"name": "default-redis"}, "spec": spec}  # fmt: skip
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "invalid-pools", PLURAL, body,
                                                     field_validation="Strict")  # fmt: skip
    assert created["spec"]["redis"]["keyPrefix"] == "team-a"
