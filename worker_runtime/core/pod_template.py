"""The pod-template parts of a WorkerPool spec: env, tolerations, resources, pull secrets, volumes,
security context.

Each mirrors its Kubernetes counterpart (EnvVar, Toleration, ResourceRequirements, ...) with the
API server's bounds, plus the cross-field rules the API server would otherwise enforce late.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from worker_runtime.core.spec_rules import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    ENV_NAME,
    REDIS_CA_DIR,
    REDIS_CA_VOLUME,
    RESERVED_ENV,
    Quantity,
    Rule,
    _cel_rules,
    _Spec,
    parse_quantity,
)


class KeyRef(_Spec):
    """A key of a Secret or ConfigMap."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Object name.")
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in it.")
    optional: bool | None = Field(None, description="Start even if it is missing.")


class FieldRef(_Spec):
    """A field of the pod, e.g. metadata.name (the downward API)."""

    field_path: str = Field(max_length=256, description="e.g. metadata.name.")
    api_version: str | None = Field(None, max_length=64, description="Default v1.")


class EnvVarSource(_Spec):
    """Where an env var's value comes from; exactly one."""

    secret_key_ref: KeyRef | None = Field(None, description="A key of a Secret.")
    config_map_key_ref: KeyRef | None = Field(None, description="A key of a ConfigMap.")
    field_ref: FieldRef | None = Field(None, description="A field of the pod.")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "secretKeyRef",
            "set exactly one of secretKeyRef, configMapKeyRef or fieldRef",
            "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef)]"
            ".filter(x, x).size() == 1",
            lambda s: [s.secret_key_ref, s.config_map_key_ref, s.field_ref].count(None) == 2,
        ),
    )


class EnvVar(_Spec):
    """An environment variable of the worker container."""

    name: str = Field(max_length=256, pattern=ENV_NAME, description="Variable name.")
    value: str | None = Field(None, max_length=32768, description="Literal value.")
    value_from: EnvVarSource | None = Field(None, description="Value from a Secret, ...")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "value",
            "set value or valueFrom, not both",
            "!(has(self.value) && has(self.valueFrom))",
            lambda s: s.value is None or s.value_from is None,
        ),
        Rule(
            "name",
            "is reserved: the operator sets it from the pool's spec (REDIS_URL, REDIS_PASSWORD,"
            " WORKER_QUEUES, HEALTH_PORT, ...; see docs/workerpool.md)",
            f"!(self.name in {list(RESERVED_ENV)!r})",
            lambda s: s.name not in RESERVED_ENV,
        ),
        Rule(
            "value",
            "REDIS_PASSWORD never inline; use redis.passwordSecretRef",
            "self.name != 'REDIS_PASSWORD' || !has(self.value)",
            lambda s: s.name != "REDIS_PASSWORD" or s.value is None,
        ),
    )


class Toleration(_Spec):
    """A pod toleration, as in the pod spec."""

    key: str | None = Field(None, max_length=316, description="Taint key; empty: all.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: str | None = Field(None, max_length=63, description="Taint value (Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect; empty: all."
    )
    toleration_seconds: int | None = Field(None, ge=0, description="NoExecute: stay this long.")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "value",
            "must be empty when operator is Exists",
            "self.operator != 'Exists' || !has(self.value) || self.value == ''",
            lambda s: s.operator != "Exists" or not s.value,
        ),
        Rule(
            "operator",
            "must be Exists when key is empty",
            "(has(self.key) && self.key != '') || self.operator == 'Exists'",
            lambda s: bool(s.key) or s.operator == "Exists",
        ),
        Rule(
            "tolerationSeconds",
            "only with effect NoExecute",
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            lambda s: s.toleration_seconds is None or s.effect == "NoExecute",
        ),
    )


def _requests_within_limits(s: Resources) -> bool:
    return all(
        parse_quantity(v) <= parse_quantity(s.limits[k])
        for k, v in s.requests.items()
        if k in s.limits
    )


class Resources(_Spec):
    """Compute resources of the worker container."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict, max_length=16, description="e.g. {cpu: 100m, memory: 128Mi}."
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict, max_length=16, description="e.g. {memory: 512Mi}."
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "requests",
            "each request must be <= its limit",
            "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
            " || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k])))"
            " <= 0)",
            _requests_within_limits,
        ),
    )


class LocalObjectReference(_Spec):
    """An object in the pool's namespace, by name."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Object name.")


class PodSecurityContext(_Spec):
    """Overrides of the worker pods' security context (default: uid/gid/fsGroup 10001, non-root).

    For images whose user is not Shoal's 10001, or clusters that assign uids (OpenShift).
    """

    run_as_user: int | None = Field(None, ge=0, le=2**31 - 1, description="Default 10001.")
    run_as_group: int | None = Field(None, ge=0, le=2**31 - 1, description="Default 10001.")
    fs_group: int | None = Field(None, ge=0, le=2**31 - 1, description="Default 10001.")
    run_as_non_root: bool | None = Field(None, description="Default true.")
    supplemental_groups: list[int] = Field(
        default_factory=list, max_length=32, description="Extra groups of the worker process."
    )
    fs_group_change_policy: Literal["Always", "OnRootMismatch"] | None = Field(
        None, description="When volume ownership is changed to fsGroup."
    )


def _open_object(schema: dict[str, Any], cls: type[Any]) -> None:
    # Kubernetes' own type, validated by the API server when the Deployment is applied (a
    # refusal shows as ReconcileFailed with its message): kept whole, not pruned.
    _cel_rules(schema, cls)
    schema.pop("additionalProperties", None)
    schema["x-kubernetes-preserve-unknown-fields"] = True


class Volume(_Spec):
    """A pod volume, as in a pod spec (configMap, secret, emptyDir, persistentVolumeClaim, ...)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_open_object)

    name: str = Field(
        max_length=63, pattern=DNS_LABEL, description="Volume name; not tmp or redis-ca."
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "name",
            "tmp is the workers' own /tmp emptyDir",
            "self.name != 'tmp'",
            lambda s: s.name != "tmp",
        ),
        Rule(
            "name",
            f"{REDIS_CA_VOLUME} is the volume of spec.redis.caSecretRef",
            f"self.name != '{REDIS_CA_VOLUME}'",
            lambda s: s.name != REDIS_CA_VOLUME,
        ),
    )


class VolumeMount(_Spec):
    """Where a volume appears in the worker container."""

    name: str = Field(max_length=63, pattern=DNS_LABEL, description="A volume of spec.volumes.")
    mount_path: str = Field(
        min_length=1, max_length=1024, pattern=r"^/", description="Absolute path; not /tmp."
    )
    read_only: bool | None = Field(None, description="Mount read-only.")
    sub_path: str | None = Field(None, max_length=1024, description="A path inside the volume.")

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "mountPath",
            "/tmp is the workers' own emptyDir",
            "self.mountPath != '/tmp' && self.mountPath != '/tmp/'",
            lambda s: s.mount_path.rstrip("/") != "/tmp",
        ),
        Rule(
            "mountPath",
            f"{REDIS_CA_DIR} is where spec.redis.caSecretRef is mounted",
            f"!self.mountPath.startsWith('{REDIS_CA_DIR}')",
            lambda s: not s.mount_path.startswith(REDIS_CA_DIR),
        ),
    )


#: Kubernetes objects kept whole (Affinity, TopologySpreadConstraint): the API server checks them.
OpenObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
