"""The real node itself: pods run the project's image, reach host servers and the API server.

These hold without the operator; when one fails, the end-to-end flow cannot pass either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.cluster_env import E2EEnv, pod_ready
from tests.harness.waiting import wait_until
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.producing.sync import SyncQueue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

UID = 10001  # the image's numeric user
RESTRICTED_SECURITY = client.V1SecurityContext(
    allow_privilege_escalation=False,
    run_as_non_root=True,
    run_as_user=UID,
    read_only_root_filesystem=True,
    capabilities=client.V1Capabilities(drop=["ALL"]),
    seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
)


def restricted_container(name: str, image: str, **fields: Any) -> client.V1Container:
    """A container that passes the restricted Pod Security profile, read-only root, /tmp."""
    return client.V1Container(
        name=name,
        image=image,
        image_pull_policy="Never",  # no registry: the image was imported into the node
        security_context=RESTRICTED_SECURITY,
        volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")],
        **fields,
    )


def pod(name: str, container: client.V1Container, **spec: Any) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(
            containers=[container],
            volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())],
            **spec,
        ),
    )


def test_node_is_ready_and_the_kubernetes_service_has_an_endpoint(e2e_env: E2EEnv) -> None:
    nodes = e2e_env.core().list_node().items
    assert nodes, "no node in the cluster"
    assert all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
               for n in nodes)  # fmt: skip
    endpoints = e2e_env.kubectl(
        "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
        "-o", "jsonpath={.items[*].endpoints[*].addresses[*]}",
    ).stdout.split()  # fmt: skip
    assert endpoints, "the kubernetes Service has no endpoint: in-cluster clients cannot work"
    if e2e_env.local is not None:
        # The API server advertises the node bridge address, where kube-proxy sends pods.
        assert endpoints == [e2e_env.host_address]


def test_plain_worker_pod_processes_jobs_from_host_redis(
    e2e_env: E2EEnv, redis_urls: tuple[str, str], restricted_namespace: Callable[[str], str]
) -> None:
    test_url, pod_url = redis_urls
    ns = restricted_namespace("e2e-plain")
    probe = client.V1Probe(
        http_get=client.V1HTTPGetAction(path="/readyz", port=9091), period_seconds=1
    )
    worker = restricted_container(
        "worker", e2e_env.image, args=["worker", "worker_runtime.demo:app"],
        env=[client.V1EnvVar(name="REDIS_URL", value=pod_url)], readiness_probe=probe,
    )  # fmt: skip
    e2e_env.core().create_namespaced_pod(ns, pod("worker", worker))
    with SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue:
        queue.enqueue_many([{"ms": 5}] * 200)
        wait_until(lambda: queue.counts()["completed"] == 200, 90, 0.2,
                   description="200 jobs completed by the worker pod")  # fmt: skip
        counts = queue.counts()
    assert (counts["failed"], counts["dead"], counts["waiting"]) == (0, 0, 0)
    running = wait_until(
        lambda: pod_ready(p := e2e_env.core().read_namespaced_pod("worker", ns)) and p,
        30, 0.2, description="worker pod Ready",
    )  # fmt: skip
    assert e2e_env.probe_results(running).get("successful", 0) >= 1


def test_pod_reaches_the_api_server_through_the_kubernetes_service(
    e2e_env: E2EEnv, restricted_namespace: Callable[[str], str]
) -> None:
    ns = restricted_namespace("e2e-incluster")
    script = (
        "from kubernetes import client, config; config.load_incluster_config(); "
        "print(client.VersionApi().get_code().git_version)"
    )
    probe = restricted_container("probe", e2e_env.image, command=["python3", "-c", script])
    e2e_env.core().create_namespaced_pod(ns, pod("incluster", probe, restart_policy="Never"))
    phase = wait_until(
        lambda: (p := e2e_env.core().read_namespaced_pod("incluster", ns).status.phase)
        in ("Succeeded", "Failed") and p,
        90, 0.2, description="in-cluster probe pod to finish",
    )  # fmt: skip
    # Logs come from the kubelet through the API server (its kubelet client certificate).
    logs = e2e_env.core().read_namespaced_pod_log("incluster", ns)
    assert phase == "Succeeded", logs
    version = client.VersionApi(e2e_env.api).get_code().git_version
    assert logs.strip() == version
