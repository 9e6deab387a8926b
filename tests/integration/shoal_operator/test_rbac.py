"""The chart's RBAC against what the operator really calls: the API server's audit log of a
scenario that takes every code path that writes (create, scale up and down with pods, PDB
deleted, Deployment deleted and re-created, Events, leader Lease) under `rbac.scope: namespace`.
Every verb used is granted (no 403), and every verb granted is used: nothing wider than needed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.integration.shoal_operator.conftest import RELEASE, Env
from tests.integration.shoal_operator.test_scaling import drain_worker, enqueue, stop

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def granted(docs: list[dict[str, Any]], ns: str) -> set[Permission]:
    """What the chart's Roles grant in ``ns`` (ClusterRoles: cluster-scoped reads, left out)."""
    perms: set[Permission] = set()
    for doc in docs:
        if doc["kind"] != "Role" or doc["metadata"]["namespace"] != ns:
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    perms.update((group, resource, verb) for verb in rule["verbs"])
    return perms


def used(audit_log: str, user: str, ns: str) -> tuple[set[Permission], list[str]]:
    """(verbs used in ``ns`` and allowed, requests refused) by ``user``, from the audit log."""
    perms: set[Permission] = set()
    refused: list[str] = []
    for line in audit_log.splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if event["user"]["username"] != user or ref.get("namespace") != ns:
            continue
        if ref.get("resource") == "namespaces":
            continue  # cluster-scoped (the chart's read-only ClusterRole)
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        perm = (ref.get("apiGroup", ""), resource, event["verb"])
        code = event.get("responseStatus", {}).get("code")
        if code == 403:
            refused.append(f"{perm} {event['requestURI']}")
            continue
        perms.add(perm)
        if event["verb"] == "patch" and code == 201:
            perms.add((perm[0], perm[1], "create"))  # a server-side apply that created it
    return perms, refused


def test_the_chart_grants_exactly_the_verbs_the_operator_uses(
    env: Env, redis_url: str, wait: Wait
) -> None:
    op = env.start_operator(redis_url)
    wait(lambda: op.metric("shoal_operator_leader") == 1, 15, "the operator leading")
    fast = {"cooldownSeconds": 1, "scaleDownStabilizationSeconds": 1}
    env.create_pool("audit", scaling={"maxReplicas": 3, "targetBacklogPerReplica": 100, **fast})
    wait(lambda: env.deployment("audit"), 10, "the Deployment")
    enqueue(redis_url, "audit", 300)
    wait(lambda: env.replicas("audit") == 3, 10, "scaled up to 3")
    wait(lambda: len(env.pods("audit")) == 3, 30, "3 pods")
    wait(lambda: env.events("ScaledUp"), 10, "a ScaledUp Event")
    # Drain: scaling down lists the pods and sets their pod-deletion-cost.
    worker = drain_worker(redis_url, "audit")
    try:
        wait(lambda: env.replicas("audit") == 0, 30, "scaled down to 0")
    finally:
        stop(worker)
    # A new spec: the PDB is applied again (patched, not created).
    generation = env.pool("audit")["metadata"]["generation"]
    env.patch_pool("audit", {"scaling": {"maxReplicas": 4}})
    wait(lambda: env.status("audit").get("observedGeneration") == generation + 1, 10,
         "the new spec reconciled")  # fmt: skip
    # No PDB needed any more: deleted.
    env.patch_pool("audit", {"scaling": {"maxReplicas": 1}})
    wait(lambda: not env.policy.list_namespaced_pod_disruption_budget(env.ns).items, 10,
         "the PDB deleted")  # fmt: skip
    # The Deployment deleted behind its back: the pool is read again, the Deployment re-created.
    uid = env.deployment("audit").metadata.uid
    env.apps.delete_namespaced_deployment("audit", env.ns)
    wait(lambda: (d := env.deployment("audit")) is not None and d.metadata.uid != uid, 15,
         "the Deployment re-created")  # fmt: skip
    assert op.stop() == 0  # releases the Lease (update)

    user = f"system:serviceaccount:{env.ns}:{RELEASE}"
    docs = [d for d in yaml.safe_load_all((env.tmp / "rbac.yaml").read_text()) if d]
    grants = granted(docs, env.ns)

    def audited() -> tuple[set[Permission], list[str]]:
        return used(env.cluster.audit_log.read_text(), user, env.ns)

    # The audit backend writes in batches: wait until the last request (the Lease release) shows.
    wait(lambda: ("coordination.k8s.io", "leases", "update") in audited()[0], 10, "audit lines")
    perms, refused = audited()
    assert not refused, f"the operator was refused: {refused}"
    assert perms <= grants, f"used without a grant: {sorted(perms - grants)}"
    assert grants <= perms, f"granted but never used: {sorted(grants - perms)}"
