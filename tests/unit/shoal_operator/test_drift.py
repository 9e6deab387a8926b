"""Drift detection: server defaults and other managers' fields are not drift (pure)."""

from __future__ import annotations

import copy
from typing import Any

from shoal_operator.drift import deployment_drift, drifted_paths, pdb_drift
from shoal_operator.render import render_deployment, render_pdb
from worker_runtime.core.spec import load_workerpool

POOL = load_workerpool(
    {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "emails", "namespace": "team", "uid": "u-1"},
        "spec": {"image": "emails:1", "queues": ["emails"],
                 "resources": {"requests": {"cpu": "0.5"}}},
    }
)  # fmt: skip


def desired() -> dict[str, Any]:
    return render_deployment(POOL, default_redis_url="redis://r:6379/0", heartbeat_seconds=5)


def as_served(body: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: defaults added, quantities normalised, extra fields."""
    served = copy.deepcopy(body)
    served["spec"]["replicas"] = 3
    served["spec"]["strategy"] = {"type": "RollingUpdate"}
    pod = served["spec"]["template"]["spec"]
    pod["dnsPolicy"] = "ClusterFirst"
    c = pod["containers"][0]
    c["terminationMessagePath"] = "/dev/termination-log"
    c["resources"]["requests"]["cpu"] = "500m"
    for e in c["env"]:
        if "valueFrom" in e:
            e["valueFrom"]["fieldRef"]["apiVersion"] = "v1"
    c["env"].append({"name": "ADDED_BY_SOMEONE", "value": "x"})
    served["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    return served


def test_server_defaults_and_foreign_fields_are_not_drift() -> None:
    assert deployment_drift(desired(), as_served(desired())) == []


def test_changed_image_env_or_missing_label_is_drift() -> None:
    served = as_served(desired())
    served["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    served["metadata"]["labels"].pop("shoal.dev/pool")
    env = served["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "WORKER_QUEUES"]
    assert deployment_drift(desired(), served) == [
        "metadata.labels.shoal.dev/pool",
        "spec.template.spec.containers[worker].image",
        "spec.template.spec.containers[worker].env[WORKER_QUEUES]",
    ]


def test_replicas_are_never_drift() -> None:
    served = as_served(desired())
    served["spec"]["replicas"] = 17
    assert deployment_drift(desired(), served) == []


def test_positional_lists_and_types() -> None:
    assert drifted_paths([1, 2], [1, 2]) == []
    assert drifted_paths([1, 2], [2, 1]) == ["[0]", "[1]"]
    assert drifted_paths({"a": [1]}, {"a": "x"}) == ["a"]
    assert drifted_paths({"a": {"b": 1}}, {}) == ["a"]
    assert drifted_paths({"a": None}, {}) == []


def test_pdb_drift() -> None:
    pdb = render_pdb(POOL)
    assert pdb is not None
    served = copy.deepcopy(pdb)
    served["status"] = {"currentHealthy": 1}
    assert pdb_drift(pdb, served) == []
    served["spec"]["maxUnavailable"] = 3
    assert pdb_drift(pdb, served) == ["spec.maxUnavailable"]
