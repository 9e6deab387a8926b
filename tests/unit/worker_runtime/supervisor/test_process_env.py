"""A local worker's environment: pool settings, the manifest's env, its identity."""

from __future__ import annotations

import json
from typing import Any

from worker_runtime.core.spec import WorkerPool, load_workerpool
from worker_runtime.supervisor.process_env import ProcessIdentity, manifest_env, process_env

IDENTITY = ProcessIdentity(
    pod="up-emails-2", redis_url="redis://127.0.0.1:7000/0", heartbeat_seconds=1
)


def pool(**spec: Any) -> WorkerPool:
    base = {"image": "x", "app": "app:worker", "queues": ["emails", "sms"]}
    return load_workerpool(
        {"apiVersion": "shoal.dev/v1alpha1", "kind": "WorkerPool",
         "metadata": {"name": "emails"}, "spec": base | spec}
    )  # fmt: skip


def test_pool_settings_identity_and_local_defaults() -> None:
    env = process_env(
        pool(concurrency=7, maxJobsPerWorker=9, timeoutSeconds=42),
        IDENTITY,
        local={"PATH": "/bin", "REDIS_URL": "redis://elsewhere:1/0", "REDIS_PASSWORD": "pw"},
    )
    assert env["WORKER_QUEUES"] == "emails,sms"
    assert env["WORKER_CONCURRENCY"] == "7"
    assert env["WORKER_MAX_JOBS_PER_WORKER"] == "9"
    assert env["WORKER_TIMEOUT_SECONDS"] == env["WORKER_SHUTDOWN_GRACE_SECONDS"] == "42"
    assert json.loads(env["WORKER_RETRY"])["attempts"] == 3
    assert env["POD_NAME"] == "up-emails-2"
    assert env["SHOAL_POOL"] == "emails"
    assert env["REDIS_URL"] == "redis://127.0.0.1:7000/0"  # the pool's Redis, not the ambient one
    assert env["REDIS_PASSWORD"] == "pw"  # inherited: the worker joins it to the URL
    assert env["WORKER_HEARTBEAT_INTERVAL"] == "1"
    assert env["HEALTH_PORT"] == "0"  # many workers on one host: no fixed probe port
    assert env["PATH"] == "/bin"


def test_manifest_env_overrides_local_defaults_and_ambient_values() -> None:
    # Pool settings (WORKER_CONCURRENCY, HEALTH_PORT, ...) are reserved: the spec refuses them.
    env = process_env(
        pool(
            concurrency=3,
            env=[
                {"name": "PYTHONUNBUFFERED", "value": "0"},
                {"name": "LOG_LEVEL", "value": "debug"},
            ],
        ),
        IDENTITY,
        local={"LOG_LEVEL": "info"},
    )
    assert env["PYTHONUNBUFFERED"] == "0"
    assert env["LOG_LEVEL"] == "debug"
    assert env["WORKER_CONCURRENCY"] == "3"


def test_the_pools_key_prefix_reaches_local_workers() -> None:
    env = process_env(pool(redis={"keyPrefix": "team-a"}), IDENTITY, local={})
    assert env["SHOAL_KEY_PREFIX"] == "team-a"


def test_value_from_field_ref_and_local_secrets() -> None:
    p = pool(
        env=[
            {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "COLOUR", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        ]
    )
    values, warnings = manifest_env(p, pod="up-emails-0", local={"API_KEY": "from-shell"})
    assert values == {"MY_POD": "up-emails-0", "MY_NS": "default", "API_KEY": "from-shell"}
    assert warnings == [
        "spec.env[3].valueFrom.configMapKeyRef: not read locally; set COLOUR in the environment "
        "of `shoal up` to pass it on"
    ]
    _, missing = manifest_env(p, pod="up-emails-0", local={})
    assert [w.split(":")[0] for w in missing] == [
        "spec.env[2].valueFrom.secretKeyRef",
        "spec.env[3].valueFrom.configMapKeyRef",
    ]
