"""Helpers for the Redis-access tests: Secrets the operator may read, jobs, and a local worker
started from the env a pool's Deployment renders (the way the kubelet would start it)."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.harness.waiting import wait_until
from tests.integration.shoal_operator.conftest import RELEASE, REPO, Env
from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.producing.queue import JobSpec, Queue

CREDENTIALS_LABEL = "shoal.dev/redis-credentials"


def grant_secret_reads(env: Env) -> None:
    """What the docs tell a cluster admin to add: get on Secrets in the pools' namespace."""
    rbac = client.RbacAuthorizationV1Api(env.api)
    meta = client.V1ObjectMeta(name="shoal-redis-secrets")
    rule = client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get"])
    rbac.create_namespaced_role(env.ns, client.V1Role(metadata=meta, rules=[rule]))
    subject = client.RbacV1Subject(kind="ServiceAccount", name=RELEASE, namespace=env.ns)
    ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=meta.name)
    binding = client.V1RoleBinding(metadata=meta, role_ref=ref, subjects=[subject])
    rbac.create_namespaced_role_binding(env.ns, binding)
    kubeconfig = env.operator_kubeconfig()

    def granted() -> bool:
        out = env.cluster.kubectl("auth", "can-i", "get", "secrets", "-n", env.ns,
                                  kubeconfig=kubeconfig, check=False)  # fmt: skip
        return out.stdout.strip() == "yes"

    wait_until(granted, 10, 0.1, description="get on secrets in effect")


def put_secret(env: Env, name: str, data: dict[str, str], *, labelled: bool = True) -> None:
    labels = {CREDENTIALS_LABEL: "true"} if labelled else {}
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels),
                           string_data=data)  # fmt: skip
    env.core.create_namespaced_secret(env.ns, body)


def enqueue(redis_url: str, queue: str, count: int, *, prefix: str = DEFAULT_PREFIX) -> None:
    async def run() -> None:
        async with Queue(queue, redis_url=redis_url, prefix=prefix) as q:
            await q.enqueue_many([JobSpec(data={"n": i}) for i in range(count)])

    asyncio.run(run())


def rendered_env(env: Env, pool: str) -> list[Any]:
    deployment = env.deployment(pool)
    assert deployment is not None
    return list(deployment.spec.template.spec.containers[0].env)


def start_worker_as_rendered(
    env: Env, pool: str, queue: str, files: Path
) -> subprocess.Popen[bytes]:
    """`shoal worker` with the pool's rendered env: Secrets resolved as the kubelet would,
    the CA volume written to ``files`` (REDIS_CA_FILE points there instead of the mount)."""
    values: dict[str, str] = {}
    for var in rendered_env(env, pool):
        source = var.value_from
        if source is None:
            values[var.name] = var.value or ""
        elif source.secret_key_ref is not None:
            ref = source.secret_key_ref
            secret = env.core.read_namespaced_secret(ref.name, env.ns)
            values[var.name] = base64.b64decode(secret.data[ref.key]).decode()
        elif source.field_ref is not None:
            fields = {"metadata.name": f"{pool}-local-0", "metadata.namespace": env.ns}
            values[var.name] = fields[source.field_ref.field_path]
    pod = env.deployment(pool).spec.template.spec
    for volume in pod.volumes or []:
        if volume.secret is not None:
            secret = env.core.read_namespaced_secret(volume.secret.secret_name, env.ns)
            for item in volume.secret.items:
                (files / item.path).write_bytes(base64.b64decode(secret.data[item.key]))
    if "REDIS_CA_FILE" in values:
        values["REDIS_CA_FILE"] = str(files / Path(values["REDIS_CA_FILE"]).name)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    process_env = {"PATH": os.environ["PATH"], "PYTHONPATH": path, **values,
                   "TEST_QUEUE": queue, "HEALTH_PORT": "0",  # many processes on one host
                   "STATUS_STORE_ENABLED": "false"}  # fmt: skip
    with (files / f"worker-{pool}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shoal", "worker", "tests.integration.shoal_operator.apps:app"],
            cwd=REPO, env=process_env, stdout=log, stderr=log,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    assert proc.wait(timeout=30) == 0
