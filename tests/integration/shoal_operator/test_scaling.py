"""The scaling loop on a real API server and a real Redis: up on backlog, down to zero, hold
when Redis is gone, survive a restart, and shrink by removing idle pods only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness.redis_server import RedisServer
from tests.integration.shoal_operator.conftest import REPO, Env
from tests.integration.shoal_operator.heartbeats import write_heartbeats
from worker_runtime.producing.queue import JobSpec, Queue

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
FAST = {"cooldownSeconds": 2, "scaleDownStabilizationSeconds": 1}


def enqueue(redis_url: str, queue: str, count: int) -> None:
    async def run() -> None:
        async with Queue(queue, redis_url=redis_url) as q:
            await q.enqueue_many([JobSpec(data={"n": i}) for i in range(count)])

    asyncio.run(run())


def drain_worker(redis_url: str, queue: str) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "REDIS_URL": redis_url, "TEST_QUEUE": queue, "PYTHONPATH": path,
           "POD_NAME": "local-drainer", "STATUS_STORE_ENABLED": "false",
           "ENABLE_HEALTH_CHECKS": "false", "WORKER_HEARTBEAT_INTERVAL": "1"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "shoal", "worker", "tests.integration.shoal_operator.apps:app"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    assert proc.wait(timeout=30) == 0


def test_backlog_scales_up_within_two_seconds_and_back_to_zero(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    env.create_pool("burst", scaling={"maxReplicas": 6, **FAST})
    wait(lambda: env.replicas("burst") == 0, 5, "the pool asleep at zero")
    began = time.monotonic()
    enqueue(redis_url, "burst", 1000)
    wait(lambda: (env.replicas("burst") or 0) > 0, 2.0, "replicas raised")
    assert time.monotonic() - began < 2.0
    wait(lambda: env.replicas("burst") == 6, 5, "maxReplicas reached")
    status = wait(lambda: env.status("burst").get("backlog") == 1000 and env.status("burst"), 5,
                  "status.backlog 1000")  # fmt: skip
    assert status["desiredReplicas"] == 6
    assert "backlog 1000" in status["lastScaleReason"]
    assert status["lastScaleTime"]
    assert env.condition("burst", "Scaling")["reason"] in ("ScalingUp", "LimitedByMaxReplicas")
    wait(lambda: env.events("ScaledUp"), 5, "a ScaledUp Event")

    worker = drain_worker(redis_url, "burst")
    try:
        wait(lambda: env.status("burst").get("backlog") == 0, 30, "the backlog drained")
        wait(lambda: env.replicas("burst") == 0, 30, "back to minReplicas 0 after the cooldown")
    finally:
        stop(worker)
    wait(lambda: env.events("ScaledDown"), 5, "a ScaledDown Event")
    assert env.status("burst")["desiredReplicas"] == 0


def test_redis_outage_holds_replicas_and_degrades_until_it_recovers(
    env: Env, own_redis: RedisServer, wait: Wait
) -> None:
    op = env.start_operator(own_redis.url)
    env.create_pool("steady", scaling={"maxReplicas": 3, **FAST})
    enqueue(own_redis.url, "steady", 300)
    wait(lambda: env.replicas("steady") == 3, 5, "3 replicas for the backlog")
    own_redis.stop()
    degraded = wait(lambda: env.condition("steady", "Degraded").get("status") == "True"
                    and env.condition("steady", "Degraded"), 10, "Degraded=True")  # fmt: skip
    assert degraded["reason"] == "RedisUnavailable"
    assert "Redis" in degraded["message"]
    wait(lambda: env.events("RedisUnavailable"), 5, "a RedisUnavailable Warning Event")
    ticks = op.metric("shoal_operator_ticks_total") or 0
    wait(lambda: (op.metric("shoal_operator_ticks_total") or 0) >= ticks + 5, 10, "5 more ticks")
    assert env.replicas("steady") == 3  # held through the outage
    assert (op.metric("shoal_operator_errors_total", kind="observe") or 0) > 0
    own_redis.start()  # AOF: the backlog is still there
    wait(lambda: env.condition("steady", "Degraded").get("status") == "False", 10,
         "recovered by itself")  # fmt: skip
    assert env.replicas("steady") == 3
    wait(lambda: env.events("RedisAvailable"), 5, "a recovery Event")


def test_restart_mid_scale_changes_nothing_and_duplicates_nothing(
    env: Env, redis_url: str, wait: Wait
) -> None:
    op = env.start_operator(redis_url)
    env.create_pool("mid", scaling={"maxReplicas": 4, "scaleDownStabilizationSeconds": 30})
    enqueue(redis_url, "mid", 1000)
    wait(lambda: env.replicas("mid") == 4, 5, "4 replicas")
    before = env.deployment("mid")
    assert op.stop() == 0  # SIGTERM: a clean exit

    op2 = env.start_operator(redis_url)
    wait(lambda: (op2.metric("shoal_operator_reconciles_total", result="ok") or 0) >= 1, 10,
         "the resumed pool reconciled")  # fmt: skip
    wait(lambda: (op2.metric("shoal_operator_ticks_total") or 0) >= 8, 10, "8 ticks")
    after = env.deployment("mid")
    assert after.metadata.uid == before.metadata.uid
    assert after.metadata.generation == before.metadata.generation  # not even a no-op write
    assert after.spec.replicas == 4
    deployments = env.apps.list_namespaced_deployment(env.ns, label_selector="shoal.dev/pool=mid")
    assert len(deployments.items) == 1
    pdbs = env.policy.list_namespaced_pod_disruption_budget(
        env.ns, label_selector="shoal.dev/pool=mid"
    )
    assert len(pdbs.items) == 1
    assert op2.metric("shoal_pool_desired_replicas", namespace=env.ns, pool="mid") == 4


def test_scale_down_removes_idle_pods_and_never_a_busy_one(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    env.create_pool("pick", concurrency=5,
                    scaling={"maxReplicas": 4, "targetBacklogPerReplica": 100, **FAST})  # fmt: skip
    enqueue(redis_url, "pick", 400)
    wait(lambda: env.replicas("pick") == 4, 5, "4 replicas")
    pods = wait(lambda: len(running := [p for p in env.pods("pick")
                                        if p.status.phase == "Running"]) == 4 and running,
                30, "4 running pods")  # fmt: skip
    names = sorted(p.metadata.name for p in pods)
    busy = names[:2]

    write_heartbeats(redis_url, "pick", {pod: 1 if pod in busy else 0 for pod in names})
    worker = drain_worker(redis_url, "pick")
    try:
        wait(lambda: env.status("pick").get("backlog") == 0, 30, "backlog drained")
    finally:
        stop(worker)
    # Two jobs in flight need one worker, but two workers are busy: both stay, idle ones go.
    wait(lambda: env.replicas("pick") == 2, 20, "scaled down to the busy workers")
    wait(lambda: len(env.pods("pick")) == 2, 30, "idle pods removed")
    assert sorted(p.metadata.name for p in env.pods("pick")) == busy
    assert "busy workers hold 2" in env.status("pick")["lastScaleReason"]


def test_pool_redis_password_the_operator_may_not_read_degrades_and_names_the_secret(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    secret = {"name": "redis", "key": "password"}
    env.create_pool("private", redis={"url": redis_url, "passwordSecretRef": secret})
    d = wait(lambda: env.deployment("private"), 5, "Deployment")
    env_vars = {e.name: e for e in d.spec.template.spec.containers[0].env}
    ref = env_vars["REDIS_PASSWORD"].value_from.secret_key_ref
    assert (ref.name, ref.key) == ("redis", "password")  # by reference, never the value
    degraded = wait(lambda: env.condition("private", "Degraded").get("status") == "True"
                    and env.condition("private", "Degraded"), 10, "Degraded")  # fmt: skip
    assert degraded["reason"] == "RedisConfigInvalid"
    assert f"Secret {env.ns}/redis" in degraded["message"]
    assert "spec.redis.passwordSecretRef" in degraded["message"]
    wait(lambda: env.events("RedisConfigInvalid"), 5, "a Warning Event")
    assert env.replicas("private") == 0  # held
