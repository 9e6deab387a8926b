"""Redis over TLS with a private CA on the real node (issue 12, item 2): worker pods mount the
CA of the pool's caSecretRef and drain a `rediss://` queue; the operator (run on this machine
against the same cluster) reads it with that CA, and a pool with the wrong CA is Degraded with
a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.cluster_env import GROUP, PLURAL, REPO, VERSION, E2EEnv, pod_ready
from tests.harness.redis_tls import TlsRedis
from tests.harness.waiting import wait_until
from worker_runtime.config import with_ca_file
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.producing.sync import SyncQueue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

JOBS = 300


@pytest.fixture
def tls_redis(e2e_env: E2EEnv) -> Iterator[TlsRedis]:
    with TlsRedis(bind=("127.0.0.1", e2e_env.host_address)) as server:
        yield server


def pool(name: str, image: str, url: str, ca_secret: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool", "metadata": {"name": name},
        "spec": {
            "image": image, "imagePullPolicy": "Never", "app": "worker_runtime.demo:app",
            "queues": [DEMO_QUEUE], "concurrency": 10,
            "redis": {"url": url, "caSecretRef": {"name": ca_secret, "key": "ca.crt"}},
            "scaling": {"maxReplicas": 2, "targetDrainSeconds": 10},
            "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
        },
    }  # fmt: skip


def degraded(e2e_env: E2EEnv, ns: str, name: str) -> dict[str, Any] | None:
    body = e2e_env.custom().get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    found = [c for c in (body.get("status") or {}).get("conditions") or []
             if c["type"] == "Degraded" and c["status"] == "True"]  # fmt: skip
    return found[0] if found else None


def test_worker_pods_and_the_operator_use_the_pools_private_ca(
    e2e_env: E2EEnv, tls_redis: TlsRedis, restricted_namespace: Callable[[str], str]
) -> None:
    ns = restricted_namespace("e2e-tls")
    core = e2e_env.core()
    labels = {"shoal.dev/redis-credentials": "true"}
    for name, wrong in (("redis-ca", False), ("wrong-ca", True)):
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels),
                                 string_data={"ca.crt": tls_redis.ca_pem(wrong=wrong)})  # fmt: skip
        core.create_namespaced_secret(ns, secret)
    e2e_env.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    e2e_env.kubectl("wait", "--for", "condition=Established", f"crd/{PLURAL}.{GROUP}",
                    "--timeout=60s")  # fmt: skip
    # Established is not yet servable: a new CRD's storage answers 404/429 for a moment.
    wait_until(lambda: e2e_env.custom().list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL),
               30, 0.2, description="WorkerPools servable", ignore=(ApiException,))  # fmt: skip
    log = e2e_env.workdir / f"operator-{ns}.log"
    paths = (str(REPO), str(REPO / "operator"), os.environ.get("PYTHONPATH"))
    env = {**os.environ, "KUBECONFIG": str(e2e_env.kubeconfig),
           "PYTHONPATH": os.pathsep.join(p for p in paths if p)}  # fmt: skip
    with log.open("ab") as out:
        operator = subprocess.Popen(
            [sys.executable, "-m", "shoal", "operator", "--namespace", ns, "--tick-seconds", "1"],
            cwd=REPO, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        pod_url = tls_redis.url_at(e2e_env.host_address)
        custom = e2e_env.custom()
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, pool("tls", e2e_env.image, pod_url, "redis-ca")
        )
        custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, pool("wrongca", e2e_env.image, pod_url, "wrong-ca")
        )
        test_url = with_ca_file(tls_redis.url, str(tls_redis.ca.cert))
        with SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue:
            queue.enqueue_many([{"ms": 5}] * JOBS)
            wait_until(lambda: queue.counts()["completed"] == JOBS, 240, 0.5,
                       description=f"{JOBS} jobs completed by worker pods over TLS")  # fmt: skip
            counts = queue.counts()
        assert (counts["failed"], counts["dead"]) == (0, 0)
        # /readyz needs Redis: a Ready pod reached it over TLS with the mounted CA.
        wait_until(lambda: any(pod_ready(p) for p in core.list_namespaced_pod(
            ns, label_selector="shoal.dev/pool=tls").items), 30, 0.5,
            description="a Ready worker pod")  # fmt: skip
        found = wait_until(lambda: degraded(e2e_env, ns, "wrongca"), 60, 0.5,
                           description="the wrong-CA pool Degraded")  # fmt: skip
        assert "certificate verify failed" in found["message"]
        assert f"spec.redis.caSecretRef (Secret {ns}/wrong-ca)" in found["message"]
    finally:
        operator.terminate()
        operator.wait(timeout=30)
