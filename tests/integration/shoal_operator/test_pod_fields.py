"""The pod fields of a WorkerPool reach running pods, in a namespace that enforces the restricted
Pod Security profile: security context overrides, scheduling, metadata and volumes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.shoal_operator.conftest import Env

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]


def test_pod_fields_reach_running_pods_under_the_restricted_profile(
    env: Env, redis_url: str, wait: Wait
) -> None:
    scheduling = client.SchedulingV1Api(env.api)
    priority = f"{env.ns}-low"
    scheduling.create_priority_class(client.V1PriorityClass(
        metadata=client.V1ObjectMeta(name=priority), value=-10))  # fmt: skip
    env.core.create_namespaced_config_map(env.ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings"), data={"a": "b"}))  # fmt: skip
    try:
        env.start_operator(redis_url)
        env.create_pool(
            "fields", replicas=1, scaling={"mode": "Manual"},
            podSecurityContext={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
            priorityClassName=priority,
            affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}}]}},
            topologySpreadConstraints=[{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"shoal.dev/pool": "fields"}}}],
            podAnnotations={"example.com/owner": "mail"}, podLabels={"team": "mail"},
            volumes=[{"name": "settings", "configMap": {"name": "settings"}}],
            volumeMounts=[{"name": "settings", "mountPath": "/etc/settings", "readOnly": True}],
        )  # fmt: skip
        pod = wait(lambda: (pods := [p for p in env.pods("fields") if p.status.phase == "Running"])
                   and pods[0], 30, "a running worker pod")  # fmt: skip
    finally:
        scheduling.delete_priority_class(priority)
    spec, meta = pod.spec, pod.metadata
    assert (spec.security_context.run_as_user, spec.security_context.fs_group) == (1000, 1000)
    assert spec.containers[0].security_context.run_as_user == 1000
    assert spec.priority_class_name == priority
    assert spec.priority == -10
    assert spec.affinity.node_affinity is not None
    assert spec.topology_spread_constraints[0].topology_key == "kubernetes.io/hostname"
    assert meta.annotations["example.com/owner"] == "mail"
    assert meta.labels["team"] == "mail"
    assert meta.labels["shoal.dev/pool"] == "fields"
    assert [v.name for v in spec.volumes] == ["tmp", "settings"]
    mounts = {m.name: m.mount_path for m in spec.containers[0].volume_mounts}
    assert mounts == {"tmp": "/tmp", "settings": "/etc/settings"}
    wait(lambda: env.condition("fields", "Degraded").get("status") == "False", 10, "not Degraded")
