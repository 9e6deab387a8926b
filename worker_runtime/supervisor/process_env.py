"""The environment of one local worker process, from the pool's spec (pure).

Layers, later wins: the supervisor's own environment (PATH, REDIS_PASSWORD, PYTHONPATH ...),
local defaults, the manifest's ``env``, the pool's settings (`worker_env`, the same the
operator puts in the pod template), then the process's identity. References the cluster
resolves (Secrets, ConfigMaps) are taken from the local environment when set there, and
otherwise left out with a warning naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker_runtime.core.spec import EnvVar, WorkerPool
from worker_runtime.core.worker_env import worker_env

#: Local defaults a manifest may override: many processes share one host, so the probe
#: server takes any free port rather than all fighting over 9091.
LOCAL_DEFAULTS = {"HEALTH_PORT": "0", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pod: str  # POD_NAME: heartbeats carry it, so the supervisor can tell its workers apart
    redis_url: str
    heartbeat_seconds: float


def manifest_env(
    pool: WorkerPool, *, pod: str, local: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The manifest's ``env`` as values, and a warning per entry that cannot be resolved."""
    values: dict[str, str] = {}
    warnings: list[str] = []
    for i, var in enumerate(pool.spec.env):
        value = _resolve(var, pool=pool, pod=pod, local=local)
        if value is None:
            source = var.value_from
            kind = "secretKeyRef" if source and source.secret_key_ref else "configMapKeyRef"
            warnings.append(
                f"spec.env[{i}].valueFrom.{kind}: not read locally; set {var.name} in the "
                "environment of `shoal up` to pass it on"
            )
        else:
            values[var.name] = value
    return values, warnings


def _resolve(var: EnvVar, *, pool: WorkerPool, pod: str, local: Mapping[str, str]) -> str | None:
    if var.value_from is None:
        return var.value or ""
    ref = var.value_from.field_ref
    if ref is not None:
        fields = {
            "metadata.name": pod,
            "metadata.namespace": pool.metadata.namespace or "default",
            "spec.nodeName": "localhost",
            "spec.serviceAccountName": pool.spec.service_account_name or "default",
        }
        return fields.get(ref.field_path, "")
    return local.get(var.name)


def process_env(
    pool: WorkerPool, identity: ProcessIdentity, *, local: Mapping[str, str]
) -> dict[str, str]:
    """Everything the worker process gets in its environment."""
    declared, _ = manifest_env(pool, pod=identity.pod, local=local)
    return {
        **local,
        **LOCAL_DEFAULTS,
        **declared,
        **worker_env(pool.spec),
        "POD_NAME": identity.pod,
        "SHOAL_POOL": pool.metadata.name,
        "REDIS_URL": identity.redis_url,
        "WORKER_HEARTBEAT_INTERVAL": f"{identity.heartbeat_seconds:g}",
    }
