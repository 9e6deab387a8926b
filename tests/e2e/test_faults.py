"""The fault suite's real-node rows (issue 11 B, docs/reliability.md): busy worker pods
force-deleted during a 20,000-job run; the operator pod killed mid-scale; the API server
frozen for 30 s. Each prints its figures to the end-to-end report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client

from tests.e2e.cluster_env import CHART, GROUP, PLURAL, VERSION, E2EEnv, pod_ready, split_image
from tests.e2e.conftest import report
from tests.e2e.test_e2e import POOL, operator_pod, pool_manifest
from tests.e2e.test_node import restricted_container
from tests.harness.waiting import wait_until
from worker_runtime.core.keys import QueueKeys
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.producing.sync import SyncQueue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# A kill every 1.5 s: on a quiet machine the 20,000 jobs drain in under 10 s.
KILL_JOBS, KILL_EVERY_S, KILL_REPLICAS = 20_000, 1.5, 3


def worker_deployment(name: str, image: str, redis_url: str) -> client.V1Deployment:
    """Plain worker pods (no operator): `shoal worker` on the demo app, 20 jobs at once."""
    probe = client.V1Probe(
        http_get=client.V1HTTPGetAction(path="/readyz", port=9091), period_seconds=1
    )
    env = [client.V1EnvVar(name="REDIS_URL", value=redis_url),
           client.V1EnvVar(name="WORKER_CONCURRENCY", value="20"),
           client.V1EnvVar(name="STATUS_STORE_ENABLED", value="false")]  # fmt: skip
    container = restricted_container(
        "worker", image, args=["worker", "worker_runtime.demo:app"], env=env, readiness_probe=probe
    )
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=KILL_REPLICAS,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[container],
                    # A force-deleted pod's container gets SIGTERM, then SIGKILL 1 s later.
                    termination_grace_period_seconds=1,
                    volumes=[
                        client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())
                    ],
                ),
            ),
        ),
    )


def busy_pods(queue: SyncQueue, pods: list[Any]) -> list[str]:
    """Running pods holding a lease now (a worker's lease token starts with its pod name)."""
    active = queue.redis.zrange(queue.keys.active, 0, -1)
    holders = [queue.redis.hget(queue.keys.job(job_id), "lk") or "" for job_id in active]
    names = [p.metadata.name for p in pods if p.status.phase == "Running"]
    return [name for name in names if any(h.startswith(f"{name}-") for h in holders)]


def test_busy_worker_pods_force_deleted_lose_no_job(
    e2e_env: E2EEnv, redis_urls: tuple[str, str], restricted_namespace: Callable[[str], str]
) -> None:
    env, (test_url, pod_url) = e2e_env, redis_urls
    ns = restricted_namespace("e2e-kill")
    env.apps().create_namespaced_deployment(ns, worker_deployment("workers", env.image, pod_url))

    def pods() -> list[Any]:
        return list(env.core().list_namespaced_pod(ns, label_selector="app=workers").items)

    wait_until(lambda: sum(map(pod_ready, pods())) == KILL_REPLICAS, 120, 0.2,
               description=f"{KILL_REPLICAS} worker pods Ready")  # fmt: skip
    killed: list[str] = []
    with SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue:
        began = time.monotonic()
        queue.enqueue_many([{"ms": 20}] * KILL_JOBS)
        next_kill = time.monotonic() + KILL_EVERY_S
        while queue.counts()["waiting"] and time.monotonic() - began < 240:
            if time.monotonic() >= next_kill and (busy := busy_pods(queue, pods())):
                victim = busy[len(killed) % len(busy)]
                env.core().delete_namespaced_pod(victim, ns, grace_period_seconds=0)  # --force
                killed.append(victim)
                next_kill = time.monotonic() + KILL_EVERY_S
            time.sleep(0.1)

        def drained() -> dict[str, int] | None:
            c = queue.counts()
            done = c["completed"] + c["dead"] >= KILL_JOBS
            return c if done and not (c["waiting"] or c["active"] or c["delayed"]) else None

        counts = wait_until(drained, 180, 0.2, description=f"{KILL_JOBS} jobs finished")
        seconds = time.monotonic() - began
        stats = queue.redis.hgetall(queue.keys.stats)
    report(f"faults: {len(killed)} busy worker pods force-deleted during {KILL_JOBS} jobs; "
           f"drained in {seconds:.1f} s; {counts}; stalled {stats.get('stalled', 0)}")  # fmt: skip
    assert len(killed) >= 3, killed
    assert counts["completed"] == KILL_JOBS, counts  # 0 lost, none dead-lettered
    assert int(stats.get("enqueued", 0)) == KILL_JOBS


@contextmanager
def operator_release(env: E2EEnv, release: str, ops: str, work: str) -> Iterator[Any]:
    """The chart installed as ``release``, watching only ``work``; uninstalled afterwards."""
    repo, tag = split_image(env.image)
    env.helm("install", release, str(CHART), "-n", ops, "--set", f"image.repository={repo}",
             "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never",
             "--set", "rbac.scope=namespace", "--set", f"rbac.namespaces={{{work}}}")  # fmt: skip
    try:
        yield wait_until(lambda: operator_pod(env, ops, release), 120, 0.2,
                         description="operator Ready")  # fmt: skip
    finally:
        env.helm("uninstall", release, "-n", ops, check=False)


def pool_deployments(env: E2EEnv, work: str) -> list[Any]:
    """Deployments the operator made for the pool (its children)."""
    items = env.apps().list_namespaced_deployment(work).items
    return [
        d for d in items if any(o.kind == "WorkerPool" for o in d.metadata.owner_references or [])
    ]


def worker_env(deployment: Any) -> dict[str, str]:
    container = deployment.spec.template.spec.containers[0]
    return {e.name: e.value for e in container.env or []}


def apply_pool(env: E2EEnv, work: str, pod_url: str, **scaling: Any) -> None:
    manifest = pool_manifest(work, env.image, pod_url)
    manifest["spec"]["scaling"].update(scaling)
    env.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))


def test_operator_pod_killed_mid_scale_converges_without_duplicate_children(
    e2e_env: E2EEnv, redis_urls: tuple[str, str], restricted_namespace: Callable[[str], str]
) -> None:
    env, (test_url, pod_url) = e2e_env, redis_urls
    ops, work = restricted_namespace("shoal-opkill"), restricted_namespace("e2e-opkill")
    jobs = 4000
    with (
        operator_release(env, "shoal-opkill", ops, work) as op,
        SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue,
    ):
        apply_pool(env, work, pod_url)
        wait_until(lambda: pool_deployments(env, work), 60, 0.2, description="pool Deployment")
        queue.enqueue_many([{"ms": 50}] * jobs)
        # Mid-scale: the operator has started to scale up and is not at its maximum yet.
        wait_until(lambda: (pool_deployments(env, work)[0].spec.replicas or 0) >= 1, 60, 0.2,
                   description="scale-up begun")  # fmt: skip
        env.core().delete_namespaced_pod(op.metadata.name, ops, grace_period_seconds=0)
        killed_at = time.monotonic()
        most_children = 0

        def converged() -> bool:
            nonlocal most_children
            children = pool_deployments(env, work)
            most_children = max(most_children, len(children))
            c = queue.counts()
            new_op = operator_pod(env, ops, "shoal-opkill")
            return bool(
                new_op is not None and new_op.metadata.name != op.metadata.name
                and c["completed"] >= jobs and not (c["waiting"] or c["active"])
                and children and children[0].spec.replicas == 0
            )  # fmt: skip

        wait_until(converged, 300, 0.5, description="new operator, drained, back to zero")
        seconds = time.monotonic() - killed_at
        status = env.custom().get_namespaced_custom_object(GROUP, VERSION, work, PLURAL, POOL)
        counts = queue.counts()
    report(f"faults: operator pod force-deleted mid-scale; converged (drained, back to zero) "
           f"{seconds:.1f} s later; at most {most_children} Deployment(s); {counts}")  # fmt: skip
    assert most_children == 1
    assert (counts["completed"], counts["dead"]) == (jobs, 0), counts
    assert status.get("status", {}).get("desiredReplicas") == 0, status


def test_api_server_frozen_30s_operator_holds_and_recovers(
    e2e_env: E2EEnv, redis_urls: tuple[str, str], restricted_namespace: Callable[[str], str]
) -> None:
    env, (test_url, pod_url) = e2e_env, redis_urls
    if env.local is None:
        pytest.skip(
            "freezing the API server needs the cluster this run started (not an external one)"
        )
    ops, work = restricted_namespace("shoal-apifreeze"), restricted_namespace("e2e-apifreeze")
    with (
        operator_release(env, "shoal-apifreeze", ops, work) as op,
        SyncQueue(DEMO_QUEUE, redis_url=test_url) as queue,
    ):
        apply_pool(env, work, pod_url, minReplicas=1)
        wait_until(lambda: pool_deployments(env, work), 60, 0.2, description="pool Deployment")
        child = pool_deployments(env, work)[0]
        queue.enqueue_many([{"ms": 100}] * 2000)  # ~20 s for one pod: work through the freeze
        wait_until(lambda: queue.counts()["completed"] >= 100, 120, 0.2,
                   description="workers running")  # fmt: skip
        before = queue.counts()["completed"]
        with env.local.cluster.paused("kube-apiserver"):
            time.sleep(30)  # the fault itself: the API server answers nothing for 30 s
            during = queue.counts()["completed"]
        # Recovers: the operator sees an edit made after the freeze and applies it to the same
        # child (its watch came back), and was never restarted.
        patch = {"spec": {"concurrency": 7}}
        env.custom().patch_namespaced_custom_object(GROUP, VERSION, work, PLURAL, POOL, patch)
        resumed_at = time.monotonic()
        edited = wait_until(
            lambda: (d := pool_deployments(env, work)) and worker_env(d[0]).get(
                "WORKER_CONCURRENCY") == "7" and d,
            120, 0.5, description="the operator applying an edit made after the freeze",
        )  # fmt: skip
        react = time.monotonic() - resumed_at
        wait_until(lambda: queue.counts()["completed"] >= 2000, 240, 0.5,
                   description="all 2000 jobs completed")  # fmt: skip
        counts = queue.counts()
        op_now = env.core().read_namespaced_pod(op.metadata.name, ops)
    restarts = sum(s.restart_count for s in op_now.status.container_statuses or [])
    report(
        f"faults: API server frozen 30 s; workers completed {during - before} jobs meanwhile; "
        f"operator restarts {restarts}; edit applied {react:.1f} s after; {counts}"
    )
    assert during > before  # the workers never needed the API server
    assert restarts == 0  # the operator held: not restarted by its liveness probe
    assert edited[0].metadata.uid == child.metadata.uid  # the same child, not a duplicate
    assert len(pool_deployments(env, work)) == 1
    assert (counts["completed"], counts["dead"]) == (2000, 0), counts
    with redis.Redis.from_url(test_url, decode_responses=True) as r:
        assert int(r.hget(QueueKeys(DEMO_QUEUE).stats, "enqueued") or 0) == 2000
