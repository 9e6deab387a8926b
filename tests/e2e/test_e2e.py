"""The user's path on real pods: ``helm install``, apply a WorkerPool, push 5,000 jobs, watch
workers appear and drain the queue, back to zero, ``helm uninstall``. Prints a timeline and the
figures against the product targets; asserts generous bounds (this is not a benchmark).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.cluster_env import (
    CHART,
    CRD_NAME,
    GROUP,
    PLURAL,
    VERSION,
    E2EEnv,
    pod_ready,
    split_image,
)
from tests.e2e.conftest import report
from tests.e2e.timeline import Target, Timeline
from tests.harness.waiting import wait_until
from worker_runtime.core.keys import DEFAULT_PREFIX, QueueKeys, worker_key, workers_index_key
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.observing.heartbeat import WorkerInfo
from worker_runtime.producing.sync import SyncQueue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RELEASE = "shoal"
POOL = "demo"
JOBS, JOB_MS = 5000, 20
MAX_REPLICAS, COOLDOWN = 4, 10
TARGETS = (
    Target("helm install -> operator Ready", "helm install", "operator ready", 20, 90),
    # What users feel: workers take jobs as soon as they fetch, before the kubelet marks them Ready.
    Target("first job enqueued -> first job started, from zero", "first job enqueued",
           "first job started", 5, 60),
    Target("first job enqueued -> first worker Ready, from zero", "first job enqueued",
           "first worker ready", 10, 60),
    Target(f"{JOBS} jobs of {JOB_MS} ms drained by <= {MAX_REPLICAS} pods", "enqueue",
           "drained", 60, 240),
    Target(f"drained -> zero pods (cooldown {COOLDOWN} s + 15 s)", "drained", "zero pods",
           COOLDOWN + 15, COOLDOWN + 120),
)  # fmt: skip


def pool_manifest(namespace: str, image: str, redis_url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": POOL, "namespace": namespace},
        "spec": {
            "image": image,
            "imagePullPolicy": "Never",  # imported into the node: nothing is pulled
            "app": "worker_runtime.demo:app",
            "queues": [DEMO_QUEUE],
            "concurrency": 10,
            "redis": {"url": redis_url},
            "scaling": {
                "minReplicas": 0,
                "maxReplicas": MAX_REPLICAS,
                "targetDrainSeconds": 10,
                "cooldownSeconds": COOLDOWN,
                "scaleDownStabilizationSeconds": 10,
            },
            "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
        },
    }


@dataclass
class Seen:
    """What the watch loop observed while the pool worked."""

    max_ready: int = 0
    max_desired: int = 0
    pods: set[str] = field(default_factory=set)
    readiness: dict[str, dict[str, float]] = field(default_factory=dict)  # kubelet's counts
    counts: dict[str, int] = field(default_factory=dict)


def operator_pod(env: E2EEnv, namespace: str, release: str = RELEASE) -> Any:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    pods = env.core().list_namespaced_pod(namespace, label_selector=selector).items
    return next((p for p in pods if pod_ready(p)), None)


def mark_wake_steps(
    tl: Timeline, pods: list[Any], desired: int, r: redis.Redis, first: str
) -> None:
    """The steps from the first enqueue to the first job started, each as soon as it is seen:
    the operator's tick and apply (the Deployment's replicas), the ReplicaSet's pod, the
    scheduler, the pod sandbox, the container, the worker connected (its heartbeat's start
    time), the first job leased (its ``st``, Redis' clock)."""
    if desired > 0:
        tl.mark("deployment scaled up")
    if pods:
        tl.mark("first pod created")
    conditions = {c.type for p in pods for c in p.status.conditions or [] if c.status == "True"}
    if "PodScheduled" in conditions:
        tl.mark("first pod scheduled")
    if "PodReadyToStartContainers" in conditions:
        tl.mark("first pod sandbox ready")
    if any(cs.state.running for p in pods for cs in p.status.container_statuses or []):
        tl.mark("first container running")
    if "first worker connected" not in tl.marks:
        for worker_id in r.zrange(workers_index_key(DEFAULT_PREFIX), 0, -1):
            fields = r.hgetall(worker_key(DEFAULT_PREFIX, worker_id))
            if fields:
                tl.mark_at(
                    "first worker connected", WorkerInfo.from_redis(fields).started_at / 1000
                )
    started = r.hget(QueueKeys(DEMO_QUEUE).job_prefix + first, "st")
    if started is not None:
        tl.mark_at("first job started", int(started) / 1000)


def watch_pool(
    env: E2EEnv, namespace: str, queue: SyncQueue, tl: Timeline, r: redis.Redis, first: str
) -> Seen:
    """Poll pods, the Deployment and the queue until drained and back to zero pods."""
    seen = Seen()

    def step() -> bool:
        pods = env.core().list_namespaced_pod(namespace, label_selector=f"shoal.dev/pool={POOL}")
        desired = env.apps().read_namespaced_deployment(POOL, namespace).spec.replicas or 0
        if "first job started" not in tl.marks:
            mark_wake_steps(tl, pods.items, desired, r, first)
        ready = [p for p in pods.items if pod_ready(p)]
        seen.max_ready = max(seen.max_ready, len(ready))
        seen.max_desired = max(seen.max_desired, desired)
        seen.pods |= {p.metadata.name for p in pods.items}
        for p in ready:
            if p.metadata.name not in seen.readiness:
                tl.mark("first worker ready")
                # While the pod lives: the kubelet forgets a pod's probe counters with it.
                seen.readiness[p.metadata.name] = env.probe_results(p)
        c = seen.counts = queue.counts()
        if (c["waiting"], c["active"], c["delayed"]) == (0, 0, 0) and (
            c["completed"] + c["failed"] + c["dead"] >= JOBS
        ):
            tl.mark("drained")
        if "drained" in tl.marks and desired == 0:
            tl.mark("scaled to zero")
            if not pods.items:
                tl.mark("zero pods")
                return True
        return False

    wait_until(step, 300, 0.2, description=f"pool {POOL} to drain {JOBS} jobs and return to zero")
    return seen


def test_user_path_install_scale_from_zero_drain_back_to_zero_uninstall(
    e2e_env: E2EEnv, redis_urls: tuple[str, str], restricted_namespace: Callable[[str], str]
) -> None:
    env, (test_url, pod_url) = e2e_env, redis_urls
    ops, work = restricted_namespace("shoal-system"), restricted_namespace("e2e-work")
    repo, tag = split_image(env.image)
    tl = Timeline()
    try:
        tl.mark("helm install")
        env.helm("install", RELEASE, str(CHART), "-n", ops, "--set", f"image.repository={repo}",
                 "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never")  # fmt: skip
        op = wait_until(lambda: operator_pod(env, ops), 120, 0.2, description="operator Ready")
        tl.mark("operator ready")
        # No kubeconfig in the pod: the operator uses in-cluster config, the kubernetes Service
        # and kube-proxy's rules; its readiness probe (/healthz) passes once kopf is up.
        assert not [e for e in op.spec.containers[0].env or [] if e.name == "KUBECONFIG"]

        env.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(pool_manifest(work, env.image,
                                                                            pod_url)))  # fmt: skip
        tl.mark("pool applied")
        deployment = wait_until(
            lambda: env.apps().read_namespaced_deployment(POOL, work), 60, 0.2,
            description="the operator to create the pool's Deployment", ignore=(ApiException,),
        )  # fmt: skip
        tl.mark("deployment created")
        assert deployment.spec.replicas == 0  # asleep: nothing waiting yet
        probe = deployment.spec.template.spec.containers[0].readiness_probe
        assert probe.http_get.path == "/readyz"

        with (
            SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue,
            redis.Redis.from_url(test_url, decode_responses=True) as r,
        ):
            tl.mark("enqueue")
            lines = "\n".join(f'{{"ms": {JOB_MS}}}' for _ in range(JOBS))
            done = subprocess.run(
                [sys.executable, "-m", "shoal", "enqueue", DEMO_QUEUE, "--jsonl", "-",
                 "--redis-url", test_url],
                input=lines, capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            assert done.stdout.strip() == str(JOBS)
            tl.mark("enqueued")
            first = r.lindex(QueueKeys(DEMO_QUEUE).wait, 0)  # the head: the first job to start
            assert first is not None
            enqueued_at = r.hget(QueueKeys(DEMO_QUEUE).job_prefix + first, "ts")
            tl.mark_at("first job enqueued", int(enqueued_at or 0) / 1000)
            seen = watch_pool(env, work, queue, tl, r, first)
        with redis.Redis.from_url(test_url, decode_responses=True) as r:
            stats = r.hgetall(QueueKeys(DEMO_QUEUE).stats)
        status = env.custom().get_namespaced_custom_object(GROUP, VERSION, work, PLURAL, POOL)
        report_pool(seen, stats, status.get("status", {}))

        c = seen.counts
        assert (c["completed"], c["failed"], c["dead"]) == (JOBS, 0, 0), c
        # Nothing lost, nothing retried, nothing interrupted by scale-down (a stall).
        assert int(stats.get("enqueued", 0)) == JOBS
        assert int(stats.get("stalled", 0)) == 0
        assert int(stats.get("retried", 0)) == 0
        # From zero to several workers, never more than maxReplicas. Pods fetch before the
        # kubelet marks them Ready, so a fast drain may end before all of them are Ready.
        assert 2 <= seen.max_desired <= MAX_REPLICAS, seen
        assert len(seen.pods) >= 2, seen
        assert 1 <= seen.max_ready <= MAX_REPLICAS, seen
        # Every worker that turned Ready did so by the kubelet running its /readyz probe.
        assert all(r.get("successful", 0) >= 1 for r in seen.readiness.values()), seen.readiness
        assert tl.over_bound(TARGETS) == []

        uninstall_and_check(env, ops, work, tl)
    finally:
        for line in tl.lines(TARGETS):
            report(line)


def report_pool(seen: Seen, stats: dict[str, str], status: dict[str, Any]) -> None:
    report(f"workers: {len(seen.pods)} pods, at most {seen.max_ready} Ready at once, "
           f"desired at most {seen.max_desired}")  # fmt: skip
    for pod, counts in sorted(seen.readiness.items()):
        report(f"  {pod}: kubelet readiness probes before Ready {counts}")
    report(f"queue: {seen.counts}; stats {dict(sorted(stats.items()))}")
    report(f"pool status: replicas {status.get('replicas')}, last scale "
           f"{status.get('lastScaleReason')!r}")  # fmt: skip


def uninstall_and_check(env: E2EEnv, ops: str, work: str, tl: Timeline) -> None:
    env.custom().delete_namespaced_custom_object(GROUP, VERSION, work, PLURAL, POOL)
    wait_until(lambda: not env.apps().list_namespaced_deployment(work).items, 60, 0.2,
               description="the pool's Deployment garbage-collected")  # fmt: skip
    env.helm("uninstall", RELEASE, "-n", ops)
    tl.mark("uninstalled")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    rbac: Any = client.RbacAuthorizationV1Api(env.api)

    def leftovers() -> list[str]:
        found = [f"pod/{p.metadata.name}" for p in env.core().list_namespaced_pod(ops).items]
        for kind, lister in (
            ("deployment", env.apps().list_namespaced_deployment),
            ("serviceaccount", env.core().list_namespaced_service_account),
            ("service", env.core().list_namespaced_service),
            ("configmap", env.core().list_namespaced_config_map),
            ("role", rbac.list_namespaced_role),
            ("rolebinding", rbac.list_namespaced_role_binding),
        ):
            found += [
                f"{kind}/{o.metadata.name}" for o in lister(ops, label_selector=selector).items
            ]
        for kind, cluster_lister in (
            ("clusterrole", rbac.list_cluster_role),
            ("clusterrolebinding", rbac.list_cluster_role_binding),
        ):
            found += [
                f"{kind}/{o.metadata.name}" for o in cluster_lister(label_selector=selector).items
            ]
        secrets = env.core().list_namespaced_secret(ops, label_selector="owner=helm").items
        return found + [f"secret/{s.metadata.name}" for s in secrets]

    wait_until(lambda: not leftovers(), 60, 0.2, description="helm uninstall to remove all")
    tl.mark("all but the CRD gone")
    # CRDs from a chart's crds/ are never deleted by Helm: WorkerPools elsewhere survive.
    ext: Any = client.ApiextensionsV1Api(env.api)
    assert ext.read_custom_resource_definition(CRD_NAME).metadata.name == CRD_NAME


def test_chart_schema_refuses_a_bad_value(
    e2e_env: E2EEnv, restricted_namespace: Callable[[str], str]
) -> None:
    ns = restricted_namespace("shoal-bad")
    done = e2e_env.helm(
        "install", "bad", str(CHART), "-n", ns, "--set", "rbac.scope=everywhere", check=False
    )
    assert done.returncode != 0
    assert "/rbac/scope" in done.stderr, done.stderr  # the message names the key
    assert "'cluster', 'namespace'" in done.stderr  # and what it accepts
    assert e2e_env.helm("list", "-n", ns, "-q").stdout.strip() == ""
    assert not e2e_env.apps().list_namespaced_deployment(ns).items
