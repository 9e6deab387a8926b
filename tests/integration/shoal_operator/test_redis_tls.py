"""Redis over TLS with a private CA (issue 12, item 2), on a real API server and a real
TLS redis-server: the operator reads the queues with the CA of the pool's caSecretRef, a worker
started from the rendered env (CA volume + REDIS_CA_FILE) drains them, and a pool with the
wrong CA is Degraded with a message naming that CA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.redis_tls import TlsRedis
from tests.integration.shoal_operator.conftest import Env
from tests.integration.shoal_operator.redis_access import (
    enqueue,
    grant_secret_reads,
    put_secret,
    rendered_env,
    start_worker_as_rendered,
    stop,
)
from worker_runtime.config import with_ca_file

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
FAST = {"cooldownSeconds": 2, "scaleDownStabilizationSeconds": 1}


def test_tls_with_a_private_ca_for_the_operator_and_the_workers(
    env: Env, wait: Wait, tmp_path: Path
) -> None:
    with TlsRedis() as redis:
        grant_secret_reads(env)
        put_secret(env, "redis-ca", {"ca.crt": redis.ca_pem()})
        put_secret(env, "wrong-ca", {"ca.crt": redis.ca_pem(wrong=True)})
        env.start_operator(None)
        env.create_pool("tls", redis={"url": redis.url,
                                      "caSecretRef": {"name": "redis-ca", "key": "ca.crt"}},
                        scaling={"maxReplicas": 3, **FAST})  # fmt: skip
        wrong_ref = {"name": "wrong-ca", "key": "ca.crt"}
        env.create_pool("wrongca", redis={"url": redis.url, "caSecretRef": wrong_ref})
        enqueue(with_ca_file(redis.url, str(redis.ca.cert)), "tls", 1000)

        wait(lambda: env.status("tls").get("backlog") == 1000, 15, "backlog read over TLS")
        wait(lambda: env.replicas("tls") == 3, 10, "scaled on the TLS backlog")
        assert env.condition("tls", "Degraded")["status"] == "False"
        values = {v.name: v.value for v in rendered_env(env, "tls")}
        assert values["REDIS_CA_FILE"] == "/etc/shoal/redis-ca/ca.crt"
        pod = env.deployment("tls").spec.template.spec
        ca_volume = next(v for v in pod.volumes if v.name == "redis-ca")
        assert ca_volume.secret.secret_name == "redis-ca"

        worker = start_worker_as_rendered(env, "tls", "tls", tmp_path)
        try:
            wait(lambda: env.status("tls").get("backlog") == 0, 60, "drained over TLS")
        finally:
            stop(worker)

        degraded = wait(lambda: env.condition("wrongca", "Degraded").get("status") == "True"
                        and env.condition("wrongca", "Degraded"), 15,
                        "wrong CA Degraded")  # fmt: skip
        assert degraded["reason"] == "RedisUnavailable"
        assert "certificate verify failed" in degraded["message"]
        assert f"spec.redis.caSecretRef (Secret {env.ns}/wrong-ca)" in degraded["message"]
        assert env.replicas("wrongca") == 0  # held


def test_a_worker_with_the_wrong_ca_cannot_reach_the_tls_redis(
    env: Env, wait: Wait, tmp_path: Path
) -> None:
    """The worker's client verifies with REDIS_CA_FILE only (not the system bundle, not nothing)."""
    with TlsRedis() as redis:
        grant_secret_reads(env)
        put_secret(env, "redis-ca", {"ca.crt": redis.ca_pem()})
        env.start_operator(None)
        ref = {"name": "redis-ca", "key": "ca.crt"}
        env.create_pool("tls", redis={"url": redis.url, "caSecretRef": ref})
        wait(lambda: env.deployment("tls"), 10, "Deployment")
        enqueue(with_ca_file(redis.url, str(redis.ca.cert)), "tls", 5)
        wait(lambda: env.status("tls").get("backlog") == 5, 15, "backlog read over TLS")
        # Swap the CA under the rendered mount path: the worker must refuse the server.
        swapped = {"stringData": {"ca.crt": redis.ca_pem(wrong=True)}}
        env.core.patch_namespaced_secret("redis-ca", env.ns, swapped)
        worker = start_worker_as_rendered(env, "tls", "tls", tmp_path)
        try:
            log = tmp_path / "worker-tls.log"
            wait(lambda: "CERTIFICATE_VERIFY_FAILED" in log.read_text(errors="replace"), 30,
                 "the worker refusing the server's certificate")  # fmt: skip
            assert env.status("tls").get("backlog") == 5  # nothing taken
        finally:
            worker.kill()
            worker.wait(timeout=10)
