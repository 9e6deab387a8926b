"""WorkerPool -> Deployment and PDB on a real API server: create, roll out, repair, delete, scale.

The operator runs as a subprocess with the chart's namespaced RBAC (a ServiceAccount token), in a
namespace that enforces the restricted Pod Security profile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.shoal_operator.conftest import IMAGE, Env

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]


def replica_writers(deployment: Any) -> list[tuple[str, str, Any]]:
    """Who manages a Deployment's spec.replicas, and when: says who set a wrong value."""
    return [
        (f.manager, f.operation, f.time)
        for f in deployment.metadata.managed_fields or ()
        if "f:replicas" in ((f.fields_v1 or {}).get("f:spec") or {})
    ]


def test_minimal_pool_gets_its_deployment_within_two_seconds(
    env: Env, redis_url: str, wait: Wait
) -> None:
    op = env.start_operator(redis_url)
    began = time.monotonic()
    env.create_pool("emails", app="emails.tasks:worker")
    d = wait(lambda: env.deployment("emails"), 2.0, "Deployment emails")
    assert time.monotonic() - began < 2.0

    pool = env.pool("emails")
    owner = d.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "WorkerPool", "emails", pool["metadata"]["uid"], True)  # fmt: skip
    assert d.metadata.labels["shoal.dev/pool"] == "emails"
    assert d.metadata.labels["app.kubernetes.io/managed-by"] == "shoal"
    assert d.spec.selector.match_labels == {"shoal.dev/pool": "emails"}
    pod = d.spec.template.spec
    c = pod.containers[0]
    assert c.image == IMAGE
    assert c.args == ["worker", "emails.tasks:worker"]
    env_vars = {e.name: e for e in c.env}
    assert env_vars["REDIS_URL"].value == redis_url
    assert env_vars["WORKER_QUEUES"].value == "emails"
    assert env_vars["POD_NAME"].value_from.field_ref.field_path == "metadata.name"
    assert c.ports[0].name == "metrics"
    assert c.ports[0].container_port == 9091
    assert c.liveness_probe.http_get.path == "/livez"
    assert c.readiness_probe.http_get.path == "/readyz"
    assert c.security_context.run_as_non_root is True
    assert c.security_context.read_only_root_filesystem is True
    assert pod.termination_grace_period_seconds == 300 + 15

    # The scaler owns spec.replicas, the reconciler everything else (handed over at creation).
    def managers() -> dict[str, str]:
        return {f.manager: f.operation for f in env.deployment("emails").metadata.managed_fields}

    wait(lambda: "shoal-operator-scaler" in managers(), 2, "replicas handed to the scaler")
    assert managers()["shoal-operator"] == managers()["shoal-operator-scaler"] == "Apply"
    assert d.spec.replicas == 0  # Auto, minReplicas 0, nothing queued

    pdb = wait(lambda: env.policy.read_namespaced_pod_disruption_budget("emails", env.ns), 5,
               "PodDisruptionBudget emails")  # fmt: skip
    assert pdb.spec.max_unavailable == 1
    assert pdb.metadata.owner_references[0].uid == pool["metadata"]["uid"]

    status = wait(lambda: env.status("emails").get("observedGeneration") and env.status("emails"),
                  5, "status")  # fmt: skip
    assert status["selector"] == "shoal.dev/pool=emails"
    assert status["observedGeneration"] == pool["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Scaling", "Degraded"}
    assert env.condition("emails", "Ready")["reason"] == "ScaledToZero"
    assert env.condition("emails", "Degraded")["status"] == "False"

    # Telemetry: liveness with the loop's probe, Prometheus metrics, JSON log lines.
    assert "scaling_loop" in op.healthy()
    wait(lambda: op.metric("shoal_pool_desired_replicas", namespace=env.ns, pool="emails") == 0,
         5, "desired replicas per pool in /metrics")  # fmt: skip
    assert (op.metric("shoal_operator_tick_duration_seconds_count") or 0) > 0
    assert (op.metric("shoal_operator_reconciles_total", result="ok") or 0) >= 1
    lines = [line for line in op.log.read_text().splitlines() if line.strip()]
    assert lines
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_spec_change_rolls_out_and_drift_is_repaired(env: Env, redis_url: str, wait: Wait) -> None:
    env.start_operator(redis_url)
    env.create_pool("reports", scaling={"mode": "Manual"}, replicas=2)
    wait(lambda: len([p for p in env.pods("reports") if p.status.phase == "Running"]) == 2, 20,
         "2 running pods (restricted profile admits them)")  # fmt: skip

    # A spec change rolls out: new template, new ReplicaSet, pods replaced.
    env.patch_pool("reports", {"image": IMAGE + "-v2", "concurrency": 9})
    wait(lambda: env.deployment("reports").spec.template.spec.containers[0].image == IMAGE + "-v2",
         5, "new image in the template")  # fmt: skip
    wait(lambda: {p.spec.containers[0].image for p in env.pods("reports")} == {IMAGE + "-v2"},
         30, "pods of the new ReplicaSet only")  # fmt: skip
    generation = env.pool("reports")["metadata"]["generation"]
    wait(lambda: env.status("reports").get("observedGeneration") == generation, 5,
         "observedGeneration follows")  # fmt: skip

    # Someone edits the Deployment: restored within seconds, replicas untouched.
    env.apps.patch_namespaced_deployment(
        "reports", env.ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "worker", "image": "evil:1"}]}}}},
    )  # fmt: skip
    wait(lambda: env.deployment("reports").spec.template.spec.containers[0].image
         == IMAGE + "-v2", 5, "edited image restored")  # fmt: skip
    assert env.replicas("reports") == 2, replica_writers(env.deployment("reports"))

    # Someone deletes the Deployment and the PDB: both come back, owned by the pool.
    old_uid = env.deployment("reports").metadata.uid
    env.apps.delete_namespaced_deployment("reports", env.ns)
    back = wait(lambda: (d := env.deployment("reports")) is not None and d.metadata.uid != old_uid
                and d, 5, "Deployment re-created")  # fmt: skip
    assert back.spec.replicas == 2, replica_writers(back)
    env.policy.delete_namespaced_pod_disruption_budget("reports", env.ns)
    wait(lambda: env.policy.read_namespaced_pod_disruption_budget("reports", env.ns), 5,
         "PDB re-created")  # fmt: skip


def test_kubectl_scale_works_in_manual_mode(env: Env, redis_url: str, wait: Wait) -> None:
    env.start_operator(redis_url)
    env.create_pool("exports", scaling={"mode": "Manual"}, replicas=1)
    wait(lambda: env.replicas("exports") == 1, 5, "1 replica")
    out = env.cluster.kubectl("-n", env.ns, "scale", "wp", "exports", "--replicas", "3")
    assert "scaled" in out.stdout
    wait(lambda: env.replicas("exports") == 3, 5, "Deployment scaled to 3")
    wait(lambda: env.status("exports").get("replicas") == 3
         and env.status("exports").get("readyReplicas") == 3, 30, "status.replicas 3")  # fmt: skip
    assert env.status("exports")["desiredReplicas"] == 3
    # The scale subresource reads back what an HPA would see.
    scale = env.custom.get_namespaced_custom_object_scale(
        "shoal.dev", "v1alpha1", env.ns, "workerpools", "exports")  # fmt: skip
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "shoal.dev/pool=exports"
    # A Manual pool with more than one worker gets its PDB once scaled up.
    wait(lambda: env.policy.read_namespaced_pod_disruption_budget("exports", env.ns), 5, "PDB")
    printed = env.cluster.kubectl("-n", env.ns, "get", "wp", "exports").stdout
    assert "exports" in printed
