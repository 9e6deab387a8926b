"""The WorkerPool manifest as pydantic models: field names, bounds, defaults, cross-field rules.

The one source for `shoal up`, the operator and the CRD: `worker_runtime.core.crd` renders the
OpenAPI schema (CEL rules included) from these classes, so the three cannot drift apart.
Attributes are snake_case; the wire (YAML, the API server) is camelCase through aliases.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from worker_runtime.core.backoff import Backoff, RetryPolicy

# The models' parts live in their own modules; these names are also importable from here.
from worker_runtime.core.manifest_errors import ManifestError as ManifestError
from worker_runtime.core.manifest_errors import describe_errors as describe_errors
from worker_runtime.core.pod_template import EnvVar as EnvVar
from worker_runtime.core.pod_template import EnvVarSource as EnvVarSource
from worker_runtime.core.pod_template import FieldRef as FieldRef
from worker_runtime.core.pod_template import KeyRef as KeyRef
from worker_runtime.core.pod_template import LocalObjectReference as LocalObjectReference
from worker_runtime.core.pod_template import OpenObject as OpenObject
from worker_runtime.core.pod_template import PodSecurityContext as PodSecurityContext
from worker_runtime.core.pod_template import Resources as Resources
from worker_runtime.core.pod_template import Toleration as Toleration
from worker_runtime.core.pod_template import Volume as Volume
from worker_runtime.core.pod_template import VolumeMount as VolumeMount
from worker_runtime.core.spec_rules import APP_REF as APP_REF
from worker_runtime.core.spec_rules import DNS_LABEL as DNS_LABEL
from worker_runtime.core.spec_rules import DNS_SUBDOMAIN as DNS_SUBDOMAIN
from worker_runtime.core.spec_rules import ENV_NAME as ENV_NAME
from worker_runtime.core.spec_rules import KEY_PREFIX as KEY_PREFIX
from worker_runtime.core.spec_rules import QUANTITY as QUANTITY
from worker_runtime.core.spec_rules import URL_WITH_PASSWORD as URL_WITH_PASSWORD
from worker_runtime.core.spec_rules import Quantity as Quantity
from worker_runtime.core.spec_rules import QueueName as QueueName
from worker_runtime.core.spec_rules import Rule as Rule
from worker_runtime.core.spec_rules import _defaults_of, _no_duplicates, _RuleChecked, _Spec
from worker_runtime.core.spec_rules import parse_quantity as parse_quantity

API_VERSION = "shoal.dev/v1alpha1"
KIND = "WorkerPool"


class SecretKeyRef(_Spec):
    """A key of a Secret in the pool's namespace (labelled shoal.dev/redis-credentials=true)."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Secret name.")
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in it.")


class RedisSpec(_Spec):
    """Where the pool's queues live. Secrets by reference only, never inline.

    Neither url nor host: the operator's default Redis, with this pool's password, CA and key
    prefix (the workers cannot read the operator's own Secret, which lives in its namespace).
    """

    url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^rediss?://\S+$",
        description="redis:// or rediss:// URL without a password. Exclusive with host;"
        " neither: the operator's default Redis.",
    )
    host: str | None = Field(
        None, max_length=253, pattern=r"^[A-Za-z0-9_.:\[\]-]+$", description="Redis host."
    )
    port: int | None = Field(None, ge=1, le=65535, description="With host; default 6379.")
    db: int | None = Field(None, ge=0, le=1023, description="With host; default 0.")
    username: str | None = Field(
        None, max_length=256, pattern=r"^\S+$", description="ACL user (not secret)."
    )
    password_secret_ref: SecretKeyRef | None = Field(None, description="Secret with the password.")
    tls: bool = Field(False, description="Use TLS (a rediss:// URL implies it).")
    ca_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret with a PEM CA bundle to verify the server's TLS certificate."
    )
    key_prefix: str | None = Field(
        None,
        max_length=63,
        pattern=KEY_PREFIX,
        description="Prefix of the queues' Redis keys (prefix:{queue}:...); default: the"
        " operator's (shoal). Give each team its own on a shared Redis.",
    )

    def uses_tls(self) -> bool:
        return self.tls or (self.url or "").startswith("rediss://")

    def is_default(self) -> bool:
        """Neither url nor host: the operator's default Redis."""
        return self.url is None and self.host is None

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "url",
            "set at most one of url or host (neither: the operator's default Redis)",
            "!(has(self.url) && has(self.host))",
            lambda s: s.url is None or s.host is None,
        ),
        Rule(
            "url",
            "must not carry a password; put it in a Secret and use passwordSecretRef",
            f"!has(self.url) || !self.url.matches('{URL_WITH_PASSWORD}')",
            lambda s: s.url is None or not re.match(URL_WITH_PASSWORD, s.url),
        ),
        Rule(
            "port",
            "only with host (with url, the port goes in the url)",
            "!has(self.port) || has(self.host)",
            lambda s: s.port is None or s.host is not None,
        ),
        Rule(
            "username",
            "only with host (with url, the user goes in the url: rediss://user@host; the"
            " default Redis's user is the operator's)",
            "!has(self.username) || has(self.host)",
            lambda s: s.username is None or s.host is not None,
        ),
        Rule(
            "db",
            "only with host (with url, the database goes in the url path)",
            "!has(self.db) || has(self.host)",
            lambda s: s.db is None or s.host is not None,
        ),
        Rule(
            "tls",
            "a redis:// url has no TLS; use a rediss:// url",
            "!(has(self.tls) && self.tls && has(self.url) && self.url.startsWith('redis://'))",
            lambda s: not (s.tls and (s.url or "").startswith("redis://")),
        ),
        Rule(
            "tls",
            "only with url or host (the default Redis's own URL says whether it uses TLS)",
            "!(has(self.tls) && self.tls) || has(self.url) || has(self.host)",
            lambda s: not s.tls or not s.is_default(),
        ),
        Rule(
            "caSecretRef",
            "needs tls: true or a rediss:// url",
            "!has(self.caSecretRef) || (has(self.tls) && self.tls)"
            " || (has(self.url) && self.url.startsWith('rediss://'))"
            " || (!has(self.url) && !has(self.host))",
            lambda s: s.ca_secret_ref is None or s.uses_tls() or s.is_default(),
        ),
    )


class BackoffSpec(Backoff, _RuleChecked):
    """The delay between attempts (the runtime's Backoff, with the manifest's bounds)."""

    model_config = ConfigDict(strict=True)

    type: Literal["fixed", "exponential"] = Field(
        "exponential", description="fixed: always delaySeconds; exponential: doubles each time."
    )
    delay_seconds: float = Field(
        1.0, ge=0, le=86400, alias="delaySeconds", description="First retry delay."
    )
    max_delay_seconds: float = Field(
        300.0, ge=0, le=86400, alias="maxDelaySeconds", description="Cap on the delay."
    )
    jitter: bool = Field(True, description="Spread retries uniformly over [delay/2, delay].")

    @model_validator(mode="after")
    def _max_not_below_delay(self) -> Self:
        return self  # replaced by the rule below, which names the field in its error

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "maxDelaySeconds",
            "must be >= delaySeconds",
            "self.maxDelaySeconds >= self.delaySeconds",
            lambda s: s.max_delay_seconds >= s.delay_seconds,
        ),
    )


class RetrySpec(RetryPolicy):
    """Attempts in total (1 = no retry) and the backoff between them."""

    model_config = ConfigDict(strict=True)

    attempts: int = Field(3, ge=1, le=1000, description="Attempts in total; 1 = no retry.")
    backoff: BackoffSpec = Field(
        default_factory=BackoffSpec, json_schema_extra=_defaults_of(BackoffSpec)
    )


class RateLimit(_Spec):
    """At most max jobs started per perSeconds, across all workers of a queue."""

    max: int = Field(ge=1, le=1_000_000, description="Jobs per window.")
    per_seconds: float = Field(1.0, gt=0, le=86400, description="Window length in seconds.")


class ScalingPolicy(_Spec):
    """One rate limit on scaling, as in the HPA: change by at most value per periodSeconds."""

    type: Literal["Pods", "Percent"] = Field(description="Pods: a count; Percent: of replicas.")
    value: int = Field(ge=1, le=10000, description="Pods or percent allowed per period.")
    period_seconds: int = Field(ge=1, le=1800, description="Window the limit applies to.")


class ScalingRules(_Spec):
    """Rate policies for one direction. No policies: no limit beyond stabilisation."""

    policies: list[ScalingPolicy] = Field(
        default_factory=list, max_length=10, description="Limits; selectPolicy picks one."
    )
    select_policy: Literal["Max", "Min", "Disabled"] = Field(
        "Max", description="Max: the policy allowing most change; Min: least; Disabled: never."
    )


class Scaling(_Spec):
    """How many workers run: Auto sizes from the queue; Manual uses spec.replicas."""

    mode: Literal["Auto", "Manual"] = Field("Auto", description="Auto or Manual.")
    min_replicas: int = Field(0, ge=0, le=10000, description="Floor; 0 allows scale to zero.")
    max_replicas: int = Field(20, ge=1, le=10000, description="Ceiling.")
    target_drain_seconds: int = Field(
        30, ge=1, le=86400, description="Size so the backlog drains within this time."
    )
    target_backlog_per_replica: int | None = Field(
        None, ge=1, le=1_000_000, description="KEDA's simple rule instead: backlog / this."
    )
    activation_backlog: int = Field(
        1, ge=1, le=1_000_000, description="Jobs waiting that wake a pool from zero."
    )
    scale_up_stabilization_seconds: int = Field(
        0, ge=0, le=3600, description="Scale up to the lowest recommendation of this window."
    )
    scale_down_stabilization_seconds: int = Field(
        120, ge=0, le=3600, description="Scale down to the highest recommendation of this window."
    )
    cooldown_seconds: int = Field(
        60, ge=0, le=86400, description="Idle time (nothing waiting or running) before zero."
    )
    scale_up: ScalingRules = Field(
        default_factory=ScalingRules, json_schema_extra=_defaults_of(ScalingRules)
    )
    scale_down: ScalingRules = Field(
        default_factory=ScalingRules, json_schema_extra=_defaults_of(ScalingRules)
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "maxReplicas",
            "must be >= minReplicas",
            "self.minReplicas <= self.maxReplicas",
            lambda s: s.min_replicas <= s.max_replicas,
        ),
    )


class WorkerPoolSpec(_Spec):
    """What to run, from which queues, and how many workers."""

    image: str = Field(
        min_length=1, max_length=1024, pattern=r"^\S+$", description="Worker image (required)."
    )
    app: str | None = Field(
        None,
        max_length=512,
        pattern=APP_REF,
        description="module:attribute `shoal worker` runs; default: the image's entry point.",
    )
    queues: Annotated[list[QueueName], _no_duplicates(str)] = Field(
        min_length=1,
        max_length=32,
        description="Queues the workers take jobs from (required).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    concurrency: int = Field(5, ge=1, le=10000, description="Jobs at once per queue per worker.")
    max_jobs_per_worker: int = Field(
        50, ge=1, le=100_000, description="In-flight cap across the pod's queues."
    )
    timeout_seconds: int = Field(
        300, ge=1, le=86400, description="Per job; also the pod's termination grace period."
    )
    retry: RetrySpec = Field(default_factory=RetrySpec, json_schema_extra=_defaults_of(RetrySpec))
    rate_limit: RateLimit | None = Field(None, description="Global rate limit of each queue.")
    redis: RedisSpec | None = Field(None, description="Default: the operator's Redis.")
    scaling: Scaling = Field(default_factory=Scaling, json_schema_extra=_defaults_of(Scaling))
    replicas: int | None = Field(
        None, ge=0, le=10000, description="Manual mode only (the scale subresource); default 1."
    )
    resources: Resources | None = Field(None, description="requests and limits of each worker.")
    env: Annotated[list[EnvVar], _no_duplicates(lambda e: e.name)] = Field(
        default_factory=list,
        max_length=256,
        description="Extra environment variables of the worker container.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Node labels the pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=64, description="Taints the pods tolerate."
    )
    service_account_name: str = Field(
        "", max_length=253, pattern=f"^$|{DNS_SUBDOMAIN}", description="Default: the namespace's."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        None, description="Default: Kubernetes' rule (Always for :latest, else IfNotPresent)."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, description="Secrets for a private registry."
    )
    pod_security_context: PodSecurityContext | None = Field(
        None, description="Overrides of the pods' security context (uid, gid, fsGroup, ...)."
    )
    affinity: OpenObject | None = Field(None, description="The pods' affinity, as in a pod spec.")
    topology_spread_constraints: list[OpenObject] = Field(
        default_factory=list, max_length=16, description="As in a pod spec."
    )
    priority_class_name: str = Field(
        "", max_length=253, pattern=f"^$|{DNS_SUBDOMAIN}", description="The pods' PriorityClass."
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra annotations of the pods."
    )
    pod_labels: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra labels; Shoal's own win."
    )
    volumes: Annotated[list[Volume], _no_duplicates(lambda v: v.name)] = Field(
        default_factory=list, max_length=64, description="Pod volumes, as in a pod spec.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )  # fmt: skip
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list, max_length=64, description="Mounts in the worker container."
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "volumeMounts",
            "each mount must name a volume of spec.volumes",
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes)"
            " && self.volumes.exists(v, v.name == m.name))",
            lambda s: {m.name for m in s.volume_mounts} <= {v.name for v in s.volumes},
        ),
    )

    def per_replica_capacity(self) -> int:
        """Jobs one worker runs at once: concurrency per queue, capped by maxJobsPerWorker."""
        return min(self.concurrency * len(self.queues), self.max_jobs_per_worker)

    def manual_replicas(self) -> int:
        return 1 if self.replicas is None else self.replicas


class ObjectMeta(BaseModel):
    """The parts of metadata Shoal reads; the API server's own fields are ignored."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, validate_by_name=True
    )

    # <= 63: the pool's name is also the value of the shoal.dev/pool label.
    name: str = Field(max_length=63, pattern=DNS_LABEL)
    namespace: str | None = Field(None, max_length=63, pattern=DNS_LABEL)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None


_STATUS_CONFIG = ConfigDict(
    extra="ignore",
    frozen=True,
    alias_generator=to_camel,
    validate_by_name=True,
    serialize_by_alias=True,
)


class Condition(BaseModel):
    """One condition: Ready, Scaling or Degraded."""

    model_config = _STATUS_CONFIG

    type: Literal["Ready", "Scaling", "Degraded"] = Field(description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason.",
    )
    message: str = Field("", max_length=32768, description="Human-readable detail.")
    observed_generation: int | None = Field(None, ge=0, description="Generation it describes.")
    last_transition_time: datetime | None = Field(None, description="When status last changed.")


class WorkerPoolStatus(BaseModel):
    """Written by the operator (and `shoal up`); read by people, HPAs and the scale subresource."""

    model_config = _STATUS_CONFIG

    replicas: int | None = Field(None, ge=0, description="Pods that exist.")
    ready_replicas: int | None = Field(None, ge=0, description="Pods ready.")
    desired_replicas: int | None = Field(None, ge=0, description="The autoscaler's last decision.")
    backlog: int | None = Field(None, ge=0, description="Waiting + due delayed jobs, all queues.")
    in_flight: int | None = Field(None, ge=0, description="Jobs running.")
    oldest_job_age_seconds: float | None = Field(None, ge=0, description="Oldest waiting job.")
    selector: str | None = Field(None, description="Label selector of the pool's pods.")
    last_scale_time: datetime | None = Field(None, description="When replicas last changed.")
    last_scale_reason: str | None = Field(None, description="Why, in one line.")
    observed_generation: int | None = Field(None, ge=0, description="Spec generation seen.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Scaling and Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class WorkerPool(BaseModel):
    """A pool of workers for some queues: the `WorkerPool` custom resource."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    api_version: Literal["shoal.dev/v1alpha1"] = "shoal.dev/v1alpha1"
    kind: Literal["WorkerPool"] = "WorkerPool"
    metadata: ObjectMeta
    spec: WorkerPoolSpec
    status: WorkerPoolStatus | None = None

    def to_manifest(self) -> dict[str, Any]:
        """The wire form: camelCase, no unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def load_workerpool(source: str | bytes | dict[str, Any]) -> WorkerPool:
    """Parse and validate a manifest (YAML/JSON text or a mapping); raise ManifestError."""
    import yaml  # parsing text is not I/O; imported here so the models stay cheap to import

    data: object = source
    if isinstance(source, str | bytes):
        try:
            docs = [d for d in yaml.safe_load_all(source) if d is not None]
        except yaml.YAMLError as exc:
            raise ManifestError(
                [("manifest", " ".join(f"not valid YAML: {exc}".split()))]
            ) from None
        if len(docs) != 1:
            raise ManifestError([("manifest", f"expected one YAML document, found {len(docs)}")])
        data = docs[0]
    if not isinstance(data, dict):
        raise ManifestError([("manifest", f"expected a mapping, got {type(data).__name__}")])
    try:
        return WorkerPool.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ManifestError(describe_errors(exc)) from None
