"""Passwords for pools on the operator's default Redis, and which Secrets a pool may name
(issue 12, items 1 and 9), on a real API server and a real Redis that requires a password.

The default Redis's password reaches the operator alone; a pool on that Redis names its own
copy in its namespace, or is refused with a condition that names the fix and is never scaled:
no more unready pods at maxReplicas that fail AUTH while the operator reads the backlog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.redis_server import RedisServer
from tests.integration.shoal_operator.conftest import Env
from tests.integration.shoal_operator.redis_access import (
    enqueue,
    grant_secret_reads,
    put_secret,
    rendered_env,
    start_worker_as_rendered,
    stop,
)

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

Wait = Callable[..., Any]
FAST = {"cooldownSeconds": 2, "scaleDownStabilizationSeconds": 1}
PASSWORD = "op-s3cret"


def degraded(env: Env, wait: Wait, pool: str) -> dict[str, Any]:
    found: dict[str, Any] = wait(
        lambda: env.condition(pool, "Degraded").get("status") == "True"
        and env.condition(pool, "Degraded"), 15, f"{pool} Degraded")  # fmt: skip
    return found


@pytest.fixture
def redis_with_password() -> Any:
    # The default user may only PING (the harness's liveness check); "shoal" needs a password.
    acl = ["--user", "default", "on", "nopass", "-@all", "+ping",
           "--user", "shoal", "on", f">{PASSWORD}", "~*", "&*", "+@all"]  # fmt: skip
    with RedisServer(extra_args=acl) as server:
        yield server


def test_default_redis_with_a_password_works_end_to_end_or_is_refused_naming_the_fix(
    env: Env, wait: Wait, redis_with_password: RedisServer, tmp_path: Path
) -> None:
    default_url = f"redis://shoal@127.0.0.1:{redis_with_password.port}/0"
    authed = f"redis://shoal:{PASSWORD}@127.0.0.1:{redis_with_password.port}/0"
    grant_secret_reads(env)
    env.start_operator(default_url, env={"REDIS_PASSWORD": PASSWORD})

    # As docs/install.md used to say: the pool names no Redis, the operator has the password.
    env.create_pool("nopw", scaling={"maxReplicas": 4, **FAST})
    enqueue(authed, "nopw", 100)
    refused = degraded(env, wait, "nopw")
    assert refused["reason"] == "RedisConfigInvalid"
    assert "the default Redis needs a password" in refused["message"]
    assert f"namespace {env.ns}" in refused["message"]
    assert "spec.redis.passwordSecretRef" in refused["message"]

    # A Secret the namespace did not mark for WorkerPools is refused (trust model, item 9).
    put_secret(env, "app-secret", {"password": PASSWORD}, labelled=False)
    env.create_pool("unlabelled", redis={"passwordSecretRef": {"name": "app-secret",
                                                              "key": "password"}})  # fmt: skip
    refused = degraded(env, wait, "unlabelled")
    assert refused["reason"] == "RedisConfigInvalid"
    assert (
        f"Secret {env.ns}/app-secret is not labelled shoal.dev/redis-credentials=true"
        in (refused["message"])
    )

    # The pool's own labelled copy: scaled, rendered by reference, and its worker drains.
    put_secret(env, "redis", {"password": PASSWORD})
    put_secret(env, "redis-wrong", {"password": "not-it"})
    env.create_pool("withpw", redis={"passwordSecretRef": {"name": "redis", "key": "password"}},
                    scaling={"maxReplicas": 2, **FAST})  # fmt: skip
    env.create_pool("wrongpw", redis={"passwordSecretRef": {"name": "redis-wrong",
                                                           "key": "password"}},
                    scaling={"maxReplicas": 2, **FAST})  # fmt: skip
    enqueue(authed, "withpw", 1000)
    enqueue(authed, "wrongpw", 1000)
    wait(lambda: env.replicas("withpw") == 2, 15, "the pool with its password scaled up")
    # Status is paced (one write per pool per few seconds): the Deployment may scale first.
    wait(lambda: env.condition("withpw", "Degraded").get("status") == "False", 15,
         "the pool with its password is not Degraded")  # fmt: skip
    values = {v.name: v for v in rendered_env(env, "withpw")}
    assert values["REDIS_URL"].value == default_url  # no password in it
    ref = values["REDIS_PASSWORD"].value_from.secret_key_ref
    assert (ref.name, ref.key) == ("redis", "password")
    worker = start_worker_as_rendered(env, "withpw", "withpw", tmp_path)
    try:
        wait(lambda: env.status("withpw").get("backlog") == 0, 60, "drained with the password")
    finally:
        stop(worker)

    # A wrong password is what the operator sees too: Degraded, never scaled.
    wrong = degraded(env, wait, "wrongpw")
    assert wrong["reason"] == "RedisUnavailable"
    assert "WRONGPASS" in wrong["message"] or "invalid username-password" in wrong["message"]
    assert PASSWORD not in wrong["message"]
    assert "not-it" not in wrong["message"]
    for pool in ("nopw", "unlabelled", "wrongpw"):
        assert env.replicas(pool) == 0, pool  # never unready pods at maxReplicas
