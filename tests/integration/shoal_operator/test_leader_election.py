"""Two `shoal operator` processes on one namespace, as the chart runs two replicas: the holder
of the Lease alone scales and posts Events; SIGKILL it and the other takes over within 15 s; a
leader frozen (SIGSTOP) past its Lease writes nothing when it wakes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.shoal_operator.conftest import Env, Operator
from tests.integration.shoal_operator.test_scaling import enqueue

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
LEASE = "shoal-operator"
SCALING = {"maxReplicas": 20, "targetBacklogPerReplica": 100, "scaleDownStabilizationSeconds": 300}


def holder(env: Env) -> str | None:
    try:
        lease = client.CoordinationV1Api(env.api).read_namespaced_lease(LEASE, env.ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return None if lease.spec is None else lease.spec.holder_identity


def scaled_by(env: Env) -> list[tuple[str, str]]:
    """(instance, message) of every ScaledUp/ScaledDown Event, oldest first."""
    events = env.events("ScaledUp") + env.events("ScaledDown")
    events.sort(key=lambda e: (e.first_timestamp, e.metadata.creation_timestamp))
    return [(e.reporting_instance, e.message) for e in events]


def leader_and_follower(env: Env, redis_url: str, wait: Wait) -> tuple[Operator, Operator]:
    a = env.start_operator(redis_url, name="op-a")
    wait(lambda: holder(env) == "op-a", 15, "op-a holding the Lease")
    b = env.start_operator(redis_url, name="op-b")
    wait(lambda: b.metric("shoal_operator_leader") == 0, 10, "op-b following")
    return a, b


def test_the_leader_alone_acts_and_a_follower_takes_over_within_15_s_of_its_death(
    env: Env, redis_url: str, wait: Wait
) -> None:
    a, b = leader_and_follower(env, redis_url, wait)
    env.create_pool("ha", scaling=SCALING)
    enqueue(redis_url, "ha", 300)
    wait(lambda: env.replicas("ha") == 3, 10, "3 replicas")
    wait(lambda: scaled_by(env), 5, "a ScaledUp Event")
    ticks = b.metric("shoal_operator_ticks_total") or 0
    wait(lambda: (b.metric("shoal_operator_ticks_total") or 0) >= ticks + 8, 10, "8 follower ticks")
    assert [who for who, _ in scaled_by(env)] == ["op-a"]  # one Event, from the leader only
    assert a.metric("shoal_operator_leader") == 1
    assert b.metric("shoal_operator_leader") == 0
    assert (b.metric("shoal_operator_reconciles_total", result="ok") or 0) == 0

    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)  # no goodbye: the Lease must expire
    a.proc.wait(timeout=10)
    killed = time.monotonic()
    enqueue(redis_url, "ha", 300)
    wait(lambda: env.replicas("ha") == 6, 20, "6 replicas from the new leader")
    took = time.monotonic() - killed
    assert took < 15, f"scaling resumed {took:.1f} s after the leader died"
    assert holder(env) == "op-b"
    wait(lambda: len(scaled_by(env)) == 2, 5, "the second ScaledUp Event")
    assert [who for who, _ in scaled_by(env)] == ["op-a", "op-b"]
    assert env.status("ha")["desiredReplicas"] == 6


def test_a_frozen_leader_writes_nothing_when_it_wakes_after_losing_its_lease(
    env: Env, redis_url: str, wait: Wait
) -> None:
    a, b = leader_and_follower(env, redis_url, wait)
    env.create_pool("frozen", scaling=SCALING)
    enqueue(redis_url, "frozen", 300)
    wait(lambda: env.replicas("frozen") == 3, 10, "3 replicas")
    wait(lambda: len(scaled_by(env)) == 1, 5, "a ScaledUp Event")
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGSTOP)  # a stalled leader: it still believes it leads
    try:
        wait(lambda: holder(env) == "op-b", 20, "op-b taking the Lease over")
        enqueue(redis_url, "frozen", 300)
        wait(lambda: env.replicas("frozen") == 6, 10, "6 replicas from op-b")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # Woken, op-a has work it would do (a new backlog) and must leave it to op-b.
    enqueue(redis_url, "frozen", 300)
    wait(lambda: env.replicas("frozen") == 9, 10, "9 replicas")
    wait(lambda: a.metric("shoal_operator_leader") == 0, 10, "op-a knowing it follows")
    ticks = a.metric("shoal_operator_ticks_total") or 0
    wait(lambda: (a.metric("shoal_operator_ticks_total") or 0) >= ticks + 8, 10, "8 op-a ticks")
    assert [who for who, _ in scaled_by(env)] == ["op-a", "op-b", "op-b"]
    assert holder(env) == "op-b"
    assert b.metric("shoal_operator_leader") == 1


def test_an_api_brownout_pauses_the_leader_and_restarts_nothing(
    env: Env, redis_url: str, wait: Wait
) -> None:
    op = env.start_operator(redis_url)
    wait(lambda: op.metric("shoal_operator_leader") == 1, 15, "the operator leading")
    env.create_pool("brownout", scaling=SCALING)
    enqueue(redis_url, "brownout", 300)
    wait(lambda: env.replicas("brownout") == 3, 10, "3 replicas")
    (apiserver,) = [p for name, p, _ in env.cluster._procs if name == "kube-apiserver"]
    os.kill(apiserver.pid, signal.SIGSTOP)  # requests hang: the nastiest kind of brownout
    try:
        frozen = time.monotonic()
        seen = []
        while time.monotonic() - frozen < 12:  # longer than the renew deadline (7 s)
            began = time.monotonic()
            health = op.healthy()  # raises on a 500 or when it hangs for 2 s
            assert time.monotonic() - began < 2
            seen.append((health["leader"], op.metric("shoal_operator_leader")))
            time.sleep(0.5)
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    assert (False, 0) in seen, f"the leader kept acting without its Lease: {seen[-3:]}"
    wait(lambda: op.metric("shoal_operator_leader") == 1, 30, "leading again, same process")
    enqueue(redis_url, "brownout", 300)
    wait(lambda: env.replicas("brownout") == 6, 30, "scaling again")
    assert op.proc is not None
    assert op.proc.poll() is None  # never exited
