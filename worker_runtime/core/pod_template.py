"""The pod-template parts of a WorkerPool spec: env vars, tolerations, resources, pull secrets.

Each mirrors its Kubernetes counterpart (EnvVar, Toleration, ResourceRequirements, ...) with the
API server's bounds, plus the cross-field rules the API server would otherwise enforce late.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from worker_runtime.core.spec_rules import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    RESERVED_ENV,
    Quantity,
    Rule,
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
