"""A WorkerPool's children as manifests (pure): the worker Deployment and its PodDisruptionBudget.

What is rendered here is what the operator server-side applies as ``shoal-operator``. The
Deployment's ``spec.replicas`` is left out on purpose: the scaling loop owns it under its own
field manager (see ``reconciler.py``), so applying the template never fights the scaler.
"""

from __future__ import annotations

from typing import Any

from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.spec import PodSecurityContext, WorkerPool, WorkerPoolSpec
from worker_runtime.core.spec_rules import REDIS_CA_DIR, REDIS_CA_VOLUME
from worker_runtime.core.worker_env import (
    key_prefix_of,
    redis_url_of,
    termination_grace_seconds,
    worker_env,
)

FIELD_MANAGER = "shoal-operator"
SCALER_FIELD_MANAGER = "shoal-operator-scaler"

POOL_LABEL = "shoal.dev/pool"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
CONTAINER_NAME = "worker"
METRICS_PORT_NAME = "metrics"
HEALTH_PORT = 9091
#: The Shoal image's numeric user (a numeric uid lets the kubelet prove runAsNonRoot).
WORKER_UID = 10001
TMP_SIZE_LIMIT = "256Mi"
#: Where spec.redis.caSecretRef's key is mounted (REDIS_CA_FILE points at the file).
REDIS_CA_FILE = f"{REDIS_CA_DIR}/ca.crt"


def pool_labels(name: str) -> dict[str, str]:
    """Labels of pool ``name``'s children and pods (the chart's PodMonitor selects them)."""
    return {
        "app.kubernetes.io/name": "shoal-worker",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "shoal",
        "app.kubernetes.io/part-of": "shoal",
        POOL_LABEL: name,
    }


def selector_labels(name: str) -> dict[str, str]:
    """The pods' selector: immutable on a Deployment, so only the pool's own label."""
    return {POOL_LABEL: name}


def selector_string(name: str) -> str:
    """status.selector: what the scale subresource (and so an HPA) uses to find the pods."""
    return f"{POOL_LABEL}={name}"


def owner_reference(pool: WorkerPool) -> dict[str, Any]:
    # blockOwnerDeletion stays off: setting it needs update on workerpools/finalizers, which the
    # chart's least-privilege role does not grant; background deletion does not need it.
    return {
        "apiVersion": pool.api_version,
        "kind": pool.kind,
        "name": pool.metadata.name,
        "uid": pool.metadata.uid or "",
        "controller": True,
    }


def _metadata(pool: WorkerPool) -> dict[str, Any]:
    return {
        "name": pool.metadata.name,
        "namespace": pool.metadata.namespace,
        "labels": pool_labels(pool.metadata.name),
        "ownerReferences": [owner_reference(pool)],
    }


#: spec.env names that say the pool configures the status store itself.
STATUS_STORE_SETTINGS = frozenset({"STATUS_STORE_URL", "STATUS_STORE_ENABLED"})


def container_env(
    pool: WorkerPool,
    *,
    default_redis_url: str | None,
    heartbeat_seconds: int,
    key_prefix: str = DEFAULT_PREFIX,
) -> list[dict[str, Any]]:
    """The worker container's env: pool settings, Redis, identity (spec.env cannot set these).

    ``key_prefix`` is the operator's default; spec.redis.keyPrefix wins (see ``worker_env``).
    """
    spec = pool.spec
    env: dict[str, dict[str, Any]] = {}

    def put(name: str, value: str | None = None, **source: Any) -> None:
        env[name] = {"name": name, "value": value} if not source else {"name": name, **source}

    put("SHOAL_POOL", pool.metadata.name)
    put("POD_NAME", valueFrom={"fieldRef": {"fieldPath": "metadata.name"}})
    put("POD_NAMESPACE", valueFrom={"fieldRef": {"fieldPath": "metadata.namespace"}})
    url = redis_url_of(spec.redis, default=default_redis_url)
    if url is not None:
        put("REDIS_URL", url)
    if spec.redis is not None and spec.redis.password_secret_ref is not None:
        ref = spec.redis.password_secret_ref
        put("REDIS_PASSWORD", valueFrom={"secretKeyRef": {"name": ref.name, "key": ref.key}})
    if spec.redis is not None and spec.redis.ca_secret_ref is not None:
        put("REDIS_CA_FILE", REDIS_CA_FILE)
    put("SHOAL_KEY_PREFIX", key_prefix_of(spec, default=key_prefix))
    for name, value in worker_env(spec).items():
        put(name, value)
    put("HEALTH_PORT", str(HEALTH_PORT))
    put("WORKER_HEARTBEAT_INTERVAL", str(heartbeat_seconds))
    if not {var.name for var in spec.env} & STATUS_STORE_SETTINGS:
        # A pod's own SQLite file lives and dies with the pod and nobody reads it, while it
        # costs about half of a worker's start (SQLAlchemy, Alembic, migration) on every scale
        # from zero: off, unless spec.env names a shared store (STATUS_STORE_URL).
        put("STATUS_STORE_ENABLED", "false")
    for var in spec.env:  # the CRD refuses reserved names: these never replace the above
        env.setdefault(var.name, var.model_dump(mode="json", by_alias=True, exclude_none=True))
    return list(env.values())


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": METRICS_PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def container(
    pool: WorkerPool,
    *,
    default_redis_url: str | None,
    heartbeat_seconds: int,
    key_prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    spec = pool.spec
    body: dict[str, Any] = {"name": CONTAINER_NAME, "image": spec.image}
    if spec.image_pull_policy is not None:
        body["imagePullPolicy"] = spec.image_pull_policy
    if spec.app is not None:
        # The image's entry point is `shoal`; without an app the image's own command runs.
        body["args"] = ["worker", spec.app]
    body["env"] = container_env(
        pool,
        default_redis_url=default_redis_url,
        heartbeat_seconds=heartbeat_seconds,
        key_prefix=key_prefix,
    )
    body["ports"] = [{"name": METRICS_PORT_NAME, "containerPort": HEALTH_PORT, "protocol": "TCP"}]
    # Every second until the first fetch (or its failure), then the kubelet probes readiness at
    # once: Ready as the worker starts taking jobs. Liveness waits for it (5 min at most).
    body["startupProbe"] = {**_probe("/startupz", period=1, failures=300), "timeoutSeconds": 1}
    body["livenessProbe"] = _probe("/livez", period=10, failures=3)
    body["readinessProbe"] = _probe("/readyz", period=5, failures=2)
    if spec.resources is not None:
        resources = spec.resources.model_dump(mode="json", by_alias=True, exclude_none=True)
        body["resources"] = {k: v for k, v in resources.items() if v}
    psc = spec.pod_security_context or PodSecurityContext()
    body["securityContext"] = {
        "runAsNonRoot": psc.run_as_non_root is not False,
        "runAsUser": WORKER_UID if psc.run_as_user is None else psc.run_as_user,
        "runAsGroup": WORKER_UID if psc.run_as_group is None else psc.run_as_group,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = [
        m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in spec.volume_mounts
    ]
    body["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    if _ca_volume(pool.spec) is not None:
        body["volumeMounts"].append(
            {"name": REDIS_CA_VOLUME, "mountPath": REDIS_CA_DIR, "readOnly": True}
        )
    body["volumeMounts"] += mounts
    return body


def _ca_volume(spec: WorkerPoolSpec) -> dict[str, Any] | None:
    """The volume holding spec.redis.caSecretRef's key as ca.crt, or None without one."""
    ref = spec.redis.ca_secret_ref if spec.redis is not None else None
    if ref is None:
        return None
    items = [{"key": ref.key, "path": "ca.crt"}]
    return {"name": REDIS_CA_VOLUME, "secret": {"secretName": ref.name, "items": items}}


def _pod_security_context(spec: WorkerPoolSpec) -> dict[str, Any]:
    """Restricted by default (non-root, uid/gid 10001); spec.podSecurityContext overrides."""
    psc = spec.pod_security_context or PodSecurityContext()
    context: dict[str, Any] = {
        "runAsNonRoot": psc.run_as_non_root is not False,
        "fsGroup": WORKER_UID if psc.fs_group is None else psc.fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    extra = psc.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    return {**extra, **context}


def pod_template(
    pool: WorkerPool,
    *,
    default_redis_url: str | None,
    heartbeat_seconds: int,
    key_prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    spec = pool.spec
    worker = container(
        pool,
        default_redis_url=default_redis_url,
        heartbeat_seconds=heartbeat_seconds,
        key_prefix=key_prefix,
    )
    pod: dict[str, Any] = {
        "containers": [worker],
        # Workers talk to Redis, never to the Kubernetes API.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        "securityContext": _pod_security_context(spec),
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
            *(v.model_dump(mode="json", by_alias=True, exclude_none=True) for v in spec.volumes),
        ],
    }
    ca_volume = _ca_volume(spec)
    if ca_volume is not None:
        pod["volumes"].append(ca_volume)
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s.name} for s in spec.image_pull_secrets]
    if spec.priority_class_name:
        pod["priorityClassName"] = spec.priority_class_name
    if spec.affinity:
        pod["affinity"] = dict(spec.affinity)
    if spec.topology_spread_constraints:
        pod["topologySpreadConstraints"] = [dict(c) for c in spec.topology_spread_constraints]
    # Shoal's labels win: the selector and the PodMonitor depend on them.
    metadata: dict[str, Any] = {"labels": {**spec.pod_labels, **pool_labels(pool.metadata.name)}}
    if spec.pod_annotations:
        metadata["annotations"] = dict(spec.pod_annotations)
    return {"metadata": metadata, "spec": pod}


def render_deployment(
    pool: WorkerPool,
    *,
    default_redis_url: str | None,
    heartbeat_seconds: int,
    replicas: int | None = None,
    key_prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    """The worker Deployment; ``replicas`` only when creating it (see the module docstring)."""
    template = pod_template(
        pool,
        default_redis_url=default_redis_url,
        heartbeat_seconds=heartbeat_seconds,
        key_prefix=key_prefix,
    )
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(pool.metadata.name)},
        "template": template,
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(pool),
        "spec": spec,
    }


def replicas_patch(pool_name: str, namespace: str, replicas: int) -> dict[str, Any]:
    """What the scaler applies as ``shoal-operator-scaler``: spec.replicas and nothing else."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pool_name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }


def pdb_wanted(spec: WorkerPoolSpec) -> bool:
    """A PDB helps once a pool can run more than one worker: drains then take one at a time."""
    if spec.scaling.mode == "Manual":
        return spec.manual_replicas() > 1
    return spec.scaling.max_replicas > 1


def render_pdb(pool: WorkerPool) -> dict[str, Any] | None:
    """The PodDisruptionBudget (one worker evicted at a time), or None when it would not help."""
    if not pdb_wanted(pool.spec):
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(pool),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(pool.metadata.name)},
            # A worker that is not ready does no work: evicting it must never be blocked.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
