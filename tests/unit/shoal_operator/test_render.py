"""Rendering a WorkerPool's children: pure, no cluster."""

from __future__ import annotations

from typing import Any

import pytest

from shoal_operator.render import (
    DELETION_COST_ANNOTATION,
    POOL_LABEL,
    pdb_wanted,
    render_deployment,
    render_pdb,
    replicas_patch,
    selector_string,
)
from worker_runtime.core.spec import ManifestError, WorkerPool, load_workerpool
from worker_runtime.core.spec_rules import RESERVED_ENV
from worker_runtime.core.worker_env import termination_grace_seconds


def pool(**spec: Any) -> WorkerPool:
    body = {"image": "registry.example/emails:1.4", "queues": ["emails"], **spec}
    return load_workerpool(
        {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "WorkerPool",
            "metadata": {"name": "emails", "namespace": "team", "uid": "u-1", "generation": 3},
            "spec": body,
        }
    )


def deployment(p: WorkerPool, **kw: Any) -> dict[str, Any]:
    return render_deployment(p, default_redis_url="redis://redis.shoal:6379/0",
                             heartbeat_seconds=5, **kw)  # fmt: skip


def env_of(d: dict[str, Any]) -> dict[str, Any]:
    container = d["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_minimal_pool_renders_a_worker_deployment_owned_by_the_pool() -> None:
    d = deployment(pool(app="emails.tasks:worker"))
    assert d["metadata"]["name"] == "emails"
    assert d["metadata"]["namespace"] == "team"
    assert d["metadata"]["ownerReferences"] == [
        {"apiVersion": "shoal.dev/v1alpha1", "kind": "WorkerPool", "name": "emails",
         "uid": "u-1", "controller": True}
    ]  # fmt: skip
    labels = d["metadata"]["labels"]
    assert labels[POOL_LABEL] == "emails"
    assert labels["app.kubernetes.io/managed-by"] == "shoal"
    assert labels["app.kubernetes.io/name"] == "shoal-worker"
    assert labels["app.kubernetes.io/instance"] == "emails"
    assert d["spec"]["selector"] == {"matchLabels": {POOL_LABEL: "emails"}}
    assert d["spec"]["template"]["metadata"]["labels"] == labels
    assert "replicas" not in d["spec"]  # owned by the scaler, see reconciler.py
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.example/emails:1.4"
    assert c["args"] == ["worker", "emails.tasks:worker"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9091, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # Probed every second until the first fetch: then readiness is probed at once (Ready as
    # the worker takes jobs, not up to a readiness period later).
    assert c["startupProbe"]["httpGet"] == {"path": "/startupz", "port": "metrics"}
    assert c["startupProbe"]["periodSeconds"] == 1


def test_replicas_only_when_asked() -> None:
    assert deployment(pool(), replicas=3)["spec"]["replicas"] == 3
    patch = replicas_patch("emails", "team", 4)
    assert patch["spec"] == {"replicas": 4}
    assert patch["metadata"] == {"name": "emails", "namespace": "team"}


def test_without_app_the_image_entry_point_runs() -> None:
    c = deployment(pool())["spec"]["template"]["spec"]["containers"][0]
    assert "args" not in c
    assert "command" not in c


def test_env_carries_pool_settings_identity_and_redis() -> None:
    env = env_of(deployment(pool(concurrency=7, maxJobsPerWorker=30, timeoutSeconds=60)))
    assert env["SHOAL_POOL"] == "emails"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["REDIS_URL"] == "redis://redis.shoal:6379/0"
    assert "REDIS_PASSWORD" not in env
    assert env["WORKER_QUEUES"] == "emails"
    assert env["WORKER_CONCURRENCY"] == "7"
    assert env["WORKER_MAX_JOBS_PER_WORKER"] == "30"
    assert env["WORKER_TIMEOUT_SECONDS"] == "60"
    assert env["HEALTH_PORT"] == "9091"
    assert env["WORKER_HEARTBEAT_INTERVAL"] == "5"


def test_pool_redis_and_password_by_secret_reference_only() -> None:
    p = pool(redis={"url": "rediss://cache.team:6380/2",
                    "passwordSecretRef": {"name": "redis", "key": "password"}})  # fmt: skip
    env = env_of(deployment(p))
    assert env["REDIS_URL"] == "rediss://cache.team:6380/2"
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis", "key": "password"}}


def test_no_redis_anywhere_leaves_redis_url_out() -> None:
    d = render_deployment(pool(), default_redis_url=None, heartbeat_seconds=5)
    assert "REDIS_URL" not in env_of(d)


def test_spec_env_joins_rendered_values_without_duplicates() -> None:
    d = deployment(pool(env=[{"name": "LOG_LEVEL", "value": "debug"}]))
    names = [e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert len(names) == len(set(names))
    assert env_of(d)["LOG_LEVEL"] == "debug"


def test_every_rendered_variable_is_reserved_so_spec_env_cannot_replace_it() -> None:
    p = pool(redis={"caSecretRef": {"name": "ca", "key": "ca.crt"},
                    "passwordSecretRef": {"name": "r", "key": "pw"}},
             rateLimit={"max": 5})  # fmt: skip
    # STATUS_STORE_ENABLED is a default the pool may override (next test), not reserved.
    assert set(env_of(deployment(p))) - {"STATUS_STORE_ENABLED"} <= set(RESERVED_ENV)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ([], "false"),  # a pod's own SQLite file: nobody reads it, it costs every start
        ([{"name": "STATUS_STORE_URL", "value": "postgresql://status@db/shoal"}], None),
        ([{"name": "STATUS_STORE_ENABLED", "value": "true"}], "true"),
    ],
)
def test_the_status_store_is_off_in_pods_unless_the_pool_configures_one(
    env: list[dict[str, str]], wanted: str | None
) -> None:
    rendered = env_of(deployment(pool(env=env)))
    assert rendered.get("STATUS_STORE_ENABLED") == wanted
    names = [e["name"] for e in env]
    assert all(name in rendered for name in names)


def test_default_redis_with_the_pools_password_and_ca() -> None:
    p = pool(redis={"passwordSecretRef": {"name": "redis", "key": "password"},
                    "caSecretRef": {"name": "redis-ca", "key": "ca.pem"}})  # fmt: skip
    d = deployment(p)
    env = env_of(d)
    assert env["REDIS_URL"] == "redis://redis.shoal:6379/0"  # the operator's default
    assert env["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis", "key": "password"}}
    assert env["REDIS_CA_FILE"] == "/etc/shoal/redis-ca/ca.crt"
    pod = d["spec"]["template"]["spec"]
    assert {"name": "redis-ca", "secret": {"secretName": "redis-ca",
            "items": [{"key": "ca.pem", "path": "ca.crt"}]}} in pod["volumes"]  # fmt: skip
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "redis-ca", "mountPath": "/etc/shoal/redis-ca", "readOnly": True} in mounts


def test_key_prefix_from_the_spec_else_the_operators_default() -> None:
    assert env_of(deployment(pool()))["SHOAL_KEY_PREFIX"] == "shoal"
    assert env_of(deployment(pool(), key_prefix="ops"))["SHOAL_KEY_PREFIX"] == "ops"
    p = pool(redis={"keyPrefix": "team-a"})
    assert env_of(deployment(p, key_prefix="ops"))["SHOAL_KEY_PREFIX"] == "team-a"


def test_restricted_security_context_and_writable_tmp() -> None:
    pod = deployment(pool())["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["containers"][0]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp"
    assert "emptyDir" in pod["volumes"][0]
    assert pod["automountServiceAccountToken"] is False


def test_grace_period_follows_the_job_timeout() -> None:
    p = pool(timeoutSeconds=120)
    pod = deployment(p)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == termination_grace_seconds(p.spec)
    assert pod["terminationGracePeriodSeconds"] > 120


def test_pod_fields_from_spec() -> None:
    p = pool(
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        nodeSelector={"pool": "workers"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "jobs",
                      "effect": "NoSchedule"}],
        serviceAccountName="emails-worker",
        imagePullPolicy="Always",
        imagePullSecrets=[{"name": "regcred"}],
    )  # fmt: skip
    pod = deployment(p)["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"memory": "1Gi"}}  # fmt: skip
    assert c["imagePullPolicy"] == "Always"
    assert pod["nodeSelector"] == {"pool": "workers"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "jobs",
                                   "effect": "NoSchedule"}]  # fmt: skip
    assert pod["serviceAccountName"] == "emails-worker"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


SPREAD = {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
          "whenUnsatisfiable": "ScheduleAnyway",
          "labelSelector": {"matchLabels": {"shoal.dev/pool": "emails"}}}  # fmt: skip
AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}}  # fmt: skip


def test_scheduling_metadata_and_volume_fields_from_spec() -> None:
    p = pool(
        podSecurityContext={"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 3000,
                            "supplementalGroups": [4000]},
        affinity=AFFINITY, topologySpreadConstraints=[SPREAD], priorityClassName="batch-low",
        podAnnotations={"example.com/team": "mail"},
        podLabels={"team": "mail", POOL_LABEL: "someone-else"},
        volumes=[{"name": "config", "configMap": {"name": "emails-config"}}],
        volumeMounts=[{"name": "config", "mountPath": "/etc/emails", "readOnly": True}],
    )  # fmt: skip
    template = deployment(p)["spec"]["template"]
    pod, meta = template["spec"], template["metadata"]
    c = pod["containers"][0]
    assert pod["securityContext"] == {"runAsNonRoot": True, "fsGroup": 3000,
                                      "runAsUser": 1000, "runAsGroup": 2000,
                                      "supplementalGroups": [4000],
                                      "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (1000, 2000)
    assert pod["affinity"] == AFFINITY
    assert pod["topologySpreadConstraints"] == [SPREAD]
    assert pod["priorityClassName"] == "batch-low"
    assert meta["annotations"] == {"example.com/team": "mail"}
    assert meta["labels"]["team"] == "mail"
    assert meta["labels"][POOL_LABEL] == "emails"  # Shoal's own label wins: the selector
    assert pod["volumes"][1] == {"name": "config", "configMap": {"name": "emails-config"}}
    assert c["volumeMounts"][1] == {"name": "config", "mountPath": "/etc/emails", "readOnly": True}


def test_defaults_leave_optional_pod_fields_out() -> None:
    template = deployment(pool())["spec"]["template"]
    pod = template["spec"]
    for field in ("nodeSelector", "tolerations", "serviceAccountName", "imagePullSecrets",
                  "affinity", "topologySpreadConstraints", "priorityClassName"):  # fmt: skip
        assert field not in pod
    assert "resources" not in pod["containers"][0]
    assert "annotations" not in template["metadata"]
    # the restricted profile, uid 10001, as before the overrides existed
    assert pod["securityContext"] == {"runAsNonRoot": True, "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"volumes": [{"name": "tmp", "emptyDir": {}}]}, "spec.volumes[0].name: tmp is"),
        ({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, "spec.volumeMounts: each mount"),
        ({"volumes": [{"name": "x", "emptyDir": {}}],
          "volumeMounts": [{"name": "x", "mountPath": "/tmp"}]}, "/tmp is the workers' own"),
        ({"podSecurityContext": {"runAsUser": -1}}, "spec.podSecurityContext.runAsUser"),
        ({"volumes": [{"name": "redis-ca", "emptyDir": {}}]},
         "spec.volumes[0].name: redis-ca is the volume of spec.redis.caSecretRef"),
        ({"volumes": [{"name": "x", "emptyDir": {}}],
          "volumeMounts": [{"name": "x", "mountPath": "/etc/shoal/redis-ca"}]},
         "/etc/shoal/redis-ca is where spec.redis.caSecretRef is mounted"),
    ],
)  # fmt: skip
def test_pod_fields_shoal_cannot_run_are_refused(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ManifestError) as err:
        pool(**spec)
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ({}, True),  # Auto, maxReplicas 20
        ({"scaling": {"maxReplicas": 1}}, False),
        ({"scaling": {"mode": "Manual"}, "replicas": 3}, True),
        ({"scaling": {"mode": "Manual"}, "replicas": 1}, False),
        ({"scaling": {"mode": "Manual"}}, False),  # default 1
    ],
)
def test_pdb_only_when_more_than_one_worker_can_run(spec: dict[str, Any], wanted: bool) -> None:
    p = pool(**spec)
    assert pdb_wanted(p.spec) is wanted
    pdb = render_pdb(p)
    assert (pdb is not None) is wanted
    if pdb is not None:
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"] == {"matchLabels": {POOL_LABEL: "emails"}}
        assert pdb["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_selector_string_matches_the_deployment_selector() -> None:
    assert selector_string("emails") == f"{POOL_LABEL}=emails"
    assert DELETION_COST_ANNOTATION == "controller.kubernetes.io/pod-deletion-cost"
