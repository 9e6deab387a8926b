"""Who decides the size, on a real API server and a real Redis: Manual mode while Redis is down,
a scale write to an Auto pool reported, busy pods that hold a scale-down only as long as their
drain would take, and rate policies that count only the scale changes actually applied."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness.redis_server import RedisServer
from tests.integration.shoal_operator.conftest import GROUP, PLURAL, VERSION, Env
from tests.integration.shoal_operator.heartbeats import write_heartbeats

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
FAST = {"cooldownSeconds": 2, "scaleDownStabilizationSeconds": 1}


def scale(env: Env, name: str, replicas: int) -> None:
    """What `kubectl scale wp NAME --replicas N` (or an HPA) does: write the scale subresource."""
    env.custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, env.ns, PLURAL, name, {"spec": {"replicas": replicas}}
    )


def degraded(env: Env, name: str) -> dict[str, Any]:
    c = env.condition(name, "Degraded")
    return c if c.get("status") == "True" else {}


def test_manual_scale_reaches_the_deployment_while_redis_is_down(
    env: Env, own_redis: RedisServer, wait: Wait
) -> None:
    env.start_operator(own_redis.url)
    env.create_pool("incident", scaling={"maxReplicas": 5, **FAST})
    wait(lambda: env.replicas("incident") == 0, 10, "the Auto pool asleep at zero")
    own_redis.stop()
    wait(lambda: degraded(env, "incident").get("reason") == "RedisUnavailable", 10,
         "the outage seen")  # fmt: skip
    # During the incident the operator takes over by hand: Manual, then kubectl scale.
    env.patch_pool("incident", {"scaling": {"mode": "Manual"}, "replicas": 2})
    wait(lambda: env.replicas("incident") == 2, 10, "Manual replicas applied without Redis")
    scale(env, "incident", 3)
    wait(lambda: env.replicas("incident") == 3, 10, "kubectl scale applied without Redis")
    wait(lambda: env.status("incident").get("desiredReplicas") == 3, 5, "status desired 3")


def test_manual_scale_works_for_a_pool_whose_redis_config_cannot_be_read(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    secret = {"name": "missing", "key": "password"}
    env.create_pool("unread", replicas=1, scaling={"mode": "Manual"},
                    redis={"url": redis_url, "passwordSecretRef": secret})  # fmt: skip
    wait(lambda: degraded(env, "unread").get("reason") == "RedisConfigInvalid", 10,
         "the unreadable Secret reported")  # fmt: skip
    scale(env, "unread", 3)
    wait(lambda: env.replicas("unread") == 3, 10, "kubectl scale applied")


def test_a_scale_write_to_an_auto_pool_is_reported_not_silently_ignored(
    env: Env, redis_url: str, wait: Wait
) -> None:
    env.start_operator(redis_url)
    env.create_pool("auto", scaling={"maxReplicas": 5, **FAST})
    wait(lambda: env.replicas("auto") == 0, 10, "asleep at zero")
    scale(env, "auto", 4)  # an HPA or kubectl scale pointed at an Auto pool
    scaling = wait(lambda: env.condition("auto", "Scaling").get("reason") == "ReplicasIgnored"
                   and env.condition("auto", "Scaling"), 10, "ReplicasIgnored")  # fmt: skip
    assert "spec.replicas 4 is ignored in Auto mode" in scaling["message"]
    assert "scaling.mode: Manual" in scaling["message"]
    wait(lambda: env.events("ReplicasIgnored"), 10, "a Warning Event")
    assert env.replicas("auto") == 0  # the autoscaler still decides


def four_busy_pods(
    env: Env, redis_url: str, name: str, wait: Wait, *, timeout: int, **scaling: Any
) -> list[str]:
    """A Manual pool of 4 running pods, each running a job, switched to Auto."""
    env.start_operator(redis_url)
    env.create_pool(name, replicas=4, concurrency=5, timeoutSeconds=timeout,
                    scaling={"mode": "Manual"})  # fmt: skip
    pods = wait(lambda: len(running := [p for p in env.pods(name)
                                        if p.status.phase == "Running"]) == 4 and running,
                30, "4 running pods")  # fmt: skip
    names = sorted(p.metadata.name for p in pods)
    write_heartbeats(redis_url, name, dict.fromkeys(names, 1))  # steady load on every pod
    # 4 jobs in flight fit in one worker (5 at once): Auto wants 1.
    auto = {"mode": "Auto", "minReplicas": 1, **FAST, **scaling}
    env.patch_pool(name, {"replicas": None, "scaling": auto})
    return names


def test_steady_load_on_every_pod_still_scales_down_after_the_drain_time(
    env: Env, redis_url: str, wait: Wait
) -> None:
    four_busy_pods(env, redis_url, "steady", wait, timeout=2)
    began = time.monotonic()
    # Held while the busy pods could finish their jobs (timeoutSeconds 2 + 15 s of grace), then
    # scaled down: the removed pods drain on SIGTERM.
    wait(lambda: env.replicas("steady") == 1, 60, "scaled down despite every pod busy")
    assert time.monotonic() - began >= 12  # held first, not ignored
    wait(lambda: "busy workers held" in env.status("steady").get("lastScaleReason", ""), 5,
         "the hold named in the reason")  # fmt: skip


def test_a_held_scale_down_does_not_use_up_the_scale_down_policy(
    env: Env, redis_url: str, wait: Wait
) -> None:
    once = {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1800}]}}
    names = four_busy_pods(env, redis_url, "paced", wait, timeout=300, **once)
    op = env.operators[-1]
    ticks = op.metric("shoal_operator_ticks_total") or 0
    wait(lambda: (op.metric("shoal_operator_ticks_total") or 0) >= ticks + 8, 10, "8 ticks")
    assert env.replicas("paced") == 4  # held: all busy, well within their drain time
    write_heartbeats(redis_url, "paced", dict.fromkeys(names, 0))  # the jobs finished
    # The held decisions were never applied: the policy's one pod per period is still there.
    wait(lambda: env.replicas("paced") == 3, 10, "one pod removed as the policy allows")
    wait(lambda: "scale-down policy allows 3" in env.status("paced").get("lastScaleReason", ""),
         5, "the policy named in the reason")  # fmt: skip
