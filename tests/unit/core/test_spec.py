"""The WorkerPool model: defaults, bounds, cross-field rules and the loader's error message."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from worker_runtime.core.backoff import RetryPolicy, retry_delay_ms
from worker_runtime.core.spec import (
    ManifestError,
    RedisSpec,
    Scaling,
    WorkerPool,
    WorkerPoolSpec,
    load_workerpool,
    parse_quantity,
)

REPO = Path(__file__).resolve().parents[3]
DESIGN_EXAMPLE = """
apiVersion: shoal.dev/v1alpha1
kind: WorkerPool
metadata: {name: emails, namespace: default}
spec:
  image: registry.example/emails-worker:1.4
  app: "emails.tasks:worker"
  queues: [emails]
  concurrency: 10
  maxJobsPerWorker: 50
  timeoutSeconds: 300
  retry:
    attempts: 3
    backoff: {type: exponential, delaySeconds: 2, maxDelaySeconds: 300, jitter: true}
  rateLimit: {max: 50, perSeconds: 1}
  redis:
    url: redis://redis.shoal.svc:6379/0
    passwordSecretRef: {name: redis, key: password}
    tls: false
  scaling:
    mode: Auto
    minReplicas: 0
    maxReplicas: 20
    targetDrainSeconds: 30
    activationBacklog: 1
    scaleDownStabilizationSeconds: 120
    cooldownSeconds: 60
  replicas: 2
  resources: {requests: {cpu: 100m, memory: 128Mi}}
  env: [{name: LOG_LEVEL, value: info}]
  nodeSelector: {}
  tolerations: []
  serviceAccountName: ""
status:
  replicas: 2
  readyReplicas: 2
  desiredReplicas: 3
  backlog: 1200
  inFlight: 20
  oldestJobAgeSeconds: 4.2
  selector: "shoal.dev/pool=emails"
  lastScaleTime: "2026-11-29T08:00:00Z"
  lastScaleReason: "backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3"
  observedGeneration: 4
  conditions:
  - {type: Ready, status: "True", reason: PodsReady, message: "2/2 workers ready",
     observedGeneration: 4, lastTransitionTime: "2026-11-29T08:00:00Z"}
"""


def minimal(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "emails"},
        "spec": {"image": "registry.example/emails:1", "queues": ["emails"], **spec},
    }


def test_minimal_manifest_gets_the_documented_defaults() -> None:
    pool = load_workerpool(minimal())
    spec = pool.spec
    assert (spec.concurrency, spec.max_jobs_per_worker, spec.timeout_seconds) == (5, 50, 300)
    assert spec.retry.attempts == 3
    assert spec.retry.backoff.type == "exponential"
    assert (spec.retry.backoff.delay_seconds, spec.retry.backoff.max_delay_seconds) == (1, 300)
    s = spec.scaling
    assert (s.mode, s.min_replicas, s.max_replicas, s.target_drain_seconds) == ("Auto", 0, 20, 30)
    assert (s.activation_backlog, s.cooldown_seconds) == (1, 60)
    assert (s.scale_up_stabilization_seconds, s.scale_down_stabilization_seconds) == (0, 120)
    assert s.target_backlog_per_replica is None
    assert (spec.redis, spec.rate_limit, spec.replicas) == (None, None, None)
    assert spec.manual_replicas() == 1


def test_design_example_loads_with_status() -> None:
    pool = load_workerpool(DESIGN_EXAMPLE)
    wire = pool.to_manifest()
    assert wire["spec"]["redis"]["passwordSecretRef"] == {"name": "redis", "key": "password"}
    assert wire["spec"]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pool.status is not None
    assert pool.status.backlog == 1200
    assert pool.status.conditions[0].type == "Ready"
    assert pool.status.conditions[0].observed_generation == 4


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_manifest_is_valid(path: Path) -> None:
    pool = load_workerpool(path.read_text())
    assert pool.kind == "WorkerPool"


def test_manifest_round_trips_through_its_wire_form() -> None:
    pool = load_workerpool(DESIGN_EXAMPLE)
    wire = pool.to_manifest()
    assert wire["spec"]["maxJobsPerWorker"] == 50
    assert wire["spec"]["scaling"]["scaleDownStabilizationSeconds"] == 120
    assert load_workerpool(wire) == pool


def test_retry_is_the_runtimes_retry_policy() -> None:
    retry = load_workerpool(minimal(retry={"backoff": {"type": "fixed", "delaySeconds": 5}}))
    assert isinstance(retry.spec.retry, RetryPolicy)
    assert retry_delay_ms(retry.spec.retry.backoff, attempts_made=3) == 5000


def test_python_code_may_use_attribute_names_but_manifests_must_use_wire_names() -> None:
    assert Scaling(min_replicas=1, max_replicas=2).max_replicas == 2
    with pytest.raises(ManifestError, match=r"spec\.max_jobs_per_worker: unknown field"):
        load_workerpool(minimal(max_jobs_per_worker=3))


def test_per_replica_capacity_is_concurrency_per_queue_capped_across_queues() -> None:
    def spec(**kw: Any) -> WorkerPoolSpec:
        return WorkerPoolSpec.model_validate({"image": "i", "queues": ["a"], **kw})

    assert spec(concurrency=10).per_replica_capacity() == 10
    assert spec(concurrency=10, queues=["a", "b", "c"]).per_replica_capacity() == 30
    assert (
        spec(concurrency=10, queues=["a", "b", "c"], maxJobsPerWorker=25).per_replica_capacity()
        == 25
    )


def test_redis_tls_follows_flag_or_scheme() -> None:
    assert RedisSpec(url="rediss://r:6380/0").uses_tls()
    assert RedisSpec(host="r", tls=True).uses_tls()
    assert not RedisSpec(url="redis://user@r:6379/0").uses_tls()


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", "0.1"), ("128Mi", str(128 * 2**20)), ("1.5Gi", str(int(1.5 * 2**30))), ("2", "2"),
     ("2e3", "2000"), ("1k", "1000"), (4, "4"), ("500u", "0.0005")],
)  # fmt: skip
def test_parse_quantity(text: str | int, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


TOLERATION = {"key": "k", "operator": "Equal", "value": "v"}
SECRET = {"name": "ca", "key": "ca.crt"}

# (case, dotted-path changes to minimal(), the path the error must name, words of its message)
BROKEN_MANIFESTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("image missing", {"spec.image": None}, "spec.image", "required"),
    ("image empty", {"spec.image": ""}, "spec.image", "empty"),
    ("queues missing", {"spec.queues": None}, "spec.queues", "required"),
    ("queues empty", {"spec.queues": []}, "spec.queues", "at least 1"),
    ("33 queues", {"spec.queues": [f"q{i}" for i in range(33)]}, "spec.queues", "at most 32"),
    ("bad queue name", {"spec.queues": ["Emails!"]}, "spec.queues[0]", "does not match"),
    ("duplicate queue", {"spec.queues": ["a", "b", "a"]}, "spec.queues", "duplicate 'a'"),
    ("concurrency 0", {"spec.concurrency": 0}, "spec.concurrency", ">= 1"),
    ("concurrency huge", {"spec.concurrency": 10001}, "spec.concurrency", "<= 10000"),
    ("concurrency string", {"spec.concurrency": "10"}, "spec.concurrency", "integer"),
    ("maxJobsPerWorker 0", {"spec.maxJobsPerWorker": 0}, "spec.maxJobsPerWorker", ">= 1"),
    ("timeout 0", {"spec.timeoutSeconds": 0}, "spec.timeoutSeconds", ">= 1"),
    ("attempts 0", {"spec.retry.attempts": 0}, "spec.retry.attempts", ">= 1"),
    ("backoff type", {"spec.retry.backoff.type": "linear"}, "spec.retry.backoff.type", "'fixed'"),
    (
        "max delay < delay",
        {"spec.retry.backoff.delaySeconds": 10, "spec.retry.backoff.maxDelaySeconds": 5},
        "spec.retry.backoff.maxDelaySeconds",
        ">= delaySeconds",
    ),
    ("jitter string", {"spec.retry.backoff.jitter": "yes"}, "spec.retry.backoff.jitter", "true"),
    ("rate max 0", {"spec.rateLimit.max": 0}, "spec.rateLimit.max", ">= 1"),
    (
        "rate window 0",
        {"spec.rateLimit.max": 5, "spec.rateLimit.perSeconds": 0},
        "spec.rateLimit.perSeconds",
        "> 0",
    ),
    ("rate max missing", {"spec.rateLimit.perSeconds": 1}, "spec.rateLimit.max", "required"),
    ("password in url", {"spec.redis.url": "redis://:pw@r:6379/0"}, "spec.redis.url", "password"),
    ("user:pw in url", {"spec.redis.url": "rediss://app:pw@r/0"}, "spec.redis.url", "SecretRef"),
    (
        "url and host",
        {"spec.redis.url": "redis://r", "spec.redis.host": "r"},
        "spec.redis.url",
        "at most one",
    ),
    ("tls on the default Redis", {"spec.redis.tls": True}, "spec.redis.tls", "only with url"),
    (
        "password query parameter",
        {"spec.redis.url": "redis://r:6379/0?password=pw"},
        "spec.redis.url",
        "passwordSecretRef",
    ),
    (
        "password among query parameters",
        {"spec.redis.url": "rediss://r/0?ssl_check_hostname=true&password=pw"},
        "spec.redis.url",
        "passwordSecretRef",
    ),
    ("key prefix with a brace", {"spec.redis.keyPrefix": "a{b}"}, "spec.redis.keyPrefix", "match"),
    (
        "reserved env REDIS_URL",
        {"spec.env": [{"name": "REDIS_URL", "value": "redis://other:6379/0"}]},
        "spec.env[0].name",
        "reserved",
    ),
    (
        "reserved env WORKER_QUEUES",
        {
            "spec.env": [
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "WORKER_QUEUES", "value": "other"},
            ]
        },
        "spec.env[1].name",
        "reserved",
    ),
    ("url scheme", {"spec.redis.url": "http://r"}, "spec.redis.url", "does not match"),
    (
        "port with url",
        {"spec.redis.url": "redis://r", "spec.redis.port": 1},
        "spec.redis.port",
        "only with host",
    ),
    (
        "username with url",
        {"spec.redis.url": "redis://r", "spec.redis.username": "app"},
        "spec.redis.username",
        "only with host",
    ),
    (
        "username on the default Redis",
        {"spec.redis.username": "app"},
        "spec.redis.username",
        "only with host",
    ),
    (
        "port range",
        {"spec.redis.host": "r", "spec.redis.port": 70000},
        "spec.redis.port",
        "<= 65535",
    ),
    (
        "tls on redis://",
        {"spec.redis.url": "redis://r", "spec.redis.tls": True},
        "spec.redis.tls",
        "rediss://",
    ),
    (
        "CA without TLS",
        {"spec.redis.host": "r", "spec.redis.caSecretRef": SECRET},
        "spec.redis.caSecretRef",
        "tls",
    ),
    (
        "secret ref without key",
        {"spec.redis.host": "r", "spec.redis.passwordSecretRef": {"name": "r"}},
        "spec.redis.passwordSecretRef.key",
        "required",
    ),
    ("mode", {"spec.scaling.mode": "auto"}, "spec.scaling.mode", "'Auto' or 'Manual'"),
    (
        "min > max",
        {"spec.scaling.minReplicas": 5, "spec.scaling.maxReplicas": 2},
        "spec.scaling.maxReplicas",
        ">= minReplicas",
    ),
    ("min > default max", {"spec.scaling.minReplicas": 21}, "spec.scaling.maxReplicas", ">= min"),
    ("maxReplicas 0", {"spec.scaling.maxReplicas": 0}, "spec.scaling.maxReplicas", ">= 1"),
    ("drain 0", {"spec.scaling.targetDrainSeconds": 0}, "spec.scaling.targetDrainSeconds", ">= 1"),
    (
        "backlog target 0",
        {"spec.scaling.targetBacklogPerReplica": 0},
        "spec.scaling.targetBacklogPerReplica",
        ">= 1",
    ),
    (
        "activation 0",
        {"spec.scaling.activationBacklog": 0},
        "spec.scaling.activationBacklog",
        ">= 1",
    ),
    (
        "cooldown negative",
        {"spec.scaling.cooldownSeconds": -1},
        "spec.scaling.cooldownSeconds",
        ">= 0",
    ),
    (
        "policy type",
        {"spec.scaling.scaleDown.policies": [{"type": "Nodes", "value": 1, "periodSeconds": 15}]},
        "spec.scaling.scaleDown.policies[0].type",
        "'Pods' or 'Percent'",
    ),
    (
        "policy period",
        {"spec.scaling.scaleUp.policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]},
        "spec.scaling.scaleUp.policies[0].periodSeconds",
        ">= 1",
    ),
    (
        "select policy",
        {"spec.scaling.scaleUp.selectPolicy": "Most"},
        "spec.scaling.scaleUp.selectPolicy",
        "'Disabled'",
    ),
    ("replicas negative", {"spec.replicas": -1}, "spec.replicas", ">= 0"),
    (
        "bad quantity",
        {"spec.resources.requests": {"memory": "1x"}},
        "spec.resources.requests.memory",
        "quantity",
    ),
    (
        "request above limit",
        {"spec.resources.requests": {"cpu": "2"}, "spec.resources.limits": {"cpu": "500m"}},
        "spec.resources.requests",
        "<= its limit",
    ),
    (
        "env value and valueFrom",
        {"spec.env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "a"}}}]},
        "spec.env[0].value",
        "not both",
    ),
    (
        "REDIS_PASSWORD inline",
        {"spec.env": [{"name": "REDIS_PASSWORD", "value": "hunter2"}]},
        "spec.env[0].value",
        "never inline",
    ),
    ("env value int", {"spec.env": [{"name": "P", "value": 80}]}, "spec.env[0].value", "string"),
    (
        "env duplicate",
        {"spec.env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        "spec.env",
        "duplicate 'A'",
    ),
    (
        "env source empty",
        {"spec.env": [{"name": "A", "valueFrom": {}}]},
        "spec.env[0].valueFrom.secretKeyRef",
        "exactly one",
    ),
    (
        "toleration Exists with value",
        {"spec.tolerations": [{**TOLERATION, "operator": "Exists"}]},
        "spec.tolerations[0].value",
        "empty",
    ),
    (
        "toleration without key",
        {"spec.tolerations": [{"value": "v"}]},
        "spec.tolerations[0].operator",
        "Exists",
    ),
    (
        "tolerationSeconds",
        {"spec.tolerations": [{**TOLERATION, "effect": "NoSchedule", "tolerationSeconds": 5}]},
        "spec.tolerations[0].tolerationSeconds",
        "NoExecute",
    ),
    ("nodeSelector value", {"spec.nodeSelector": {"d": 1}}, "spec.nodeSelector.d", "string"),
    ("service account", {"spec.serviceAccountName": "A B"}, "spec.serviceAccountName", "match"),
    ("app", {"spec.app": "emails.tasks"}, "spec.app", "does not match"),
    ("pull policy", {"spec.imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy", "'Always'"),
    ("unknown spec field", {"spec.replica": 2}, "spec.replica", "unknown field"),
    ("unknown nested", {"spec.scaling.maxReplica": 2}, "spec.scaling.maxReplica", "unknown field"),
    ("name", {"metadata.name": "Emails_Pool"}, "metadata.name", "does not match"),
    ("name too long", {"metadata.name": "a" * 64}, "metadata.name", "at most 63"),
    ("apiVersion", {"apiVersion": "shoal.dev/v1"}, "apiVersion", "shoal.dev/v1alpha1"),
    ("kind", {"kind": "Deployment"}, "kind", "WorkerPool"),
    ("spec missing", {"spec": None}, "spec", "required"),
]


def apply_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """minimal() with dotted-path changes; None deletes the key."""
    manifest = copy.deepcopy(minimal())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = manifest
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return manifest


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [c[1:] for c in BROKEN_MANIFESTS],
    ids=[c[0] for c in BROKEN_MANIFESTS],
)
def test_broken_manifest_is_rejected_naming_the_field(
    changes: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load_workerpool(apply_changes(changes))
    problems = dict(caught.value.problems)
    assert path in problems, caught.value
    assert words in problems[path]
    assert "\n" not in str(caught.value)
    assert f"{path}: " in str(caught.value)


def test_one_error_lists_every_bad_field() -> None:
    manifest = minimal(
        concurrency=0,
        queues=["ok", "NOT OK"],
        scaling={"minReplicas": 3, "maxReplicas": 1},
        redis={"url": "redis://:pw@r:6379", "port": 7},
        extra=True,
    )
    del manifest["spec"]["image"]
    with pytest.raises(ManifestError) as caught:
        load_workerpool(manifest)
    paths = [p for p, _ in caught.value.problems]
    assert sorted(paths) == sorted(
        [
            "spec.image",
            "spec.queues[1]",
            "spec.concurrency",
            "spec.scaling.maxReplicas",
            "spec.redis.url",
            "spec.redis.port",
            "spec.extra",
        ]
    )
    assert str(caught.value).startswith("invalid WorkerPool: ")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("spec: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: 1\n---\nb: 2\n", "one YAML document, found 2"),
        ("", "found 0"),
    ],
)
def test_text_that_is_not_one_mapping_is_refused(text: str, words: str) -> None:
    with pytest.raises(ManifestError, match=words) as caught:
        load_workerpool(text)
    assert caught.value.problems[0][0] == "manifest"
    assert "\n" not in str(caught.value)


def test_models_are_immutable() -> None:
    pool = load_workerpool(minimal())
    with pytest.raises(ValueError, match="frozen"):
        pool.spec.scaling.max_replicas = 3  # type: ignore[misc]
    assert isinstance(pool, WorkerPool)
