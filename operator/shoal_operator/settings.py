"""The operator's settings: flags of `shoal operator` and their environment variables, validated.

One pydantic model, so a bad value fails at start with one line naming the setting.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.spec_rules import KEY_PREFIX

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SettingsError(ValueError):
    """A setting with a bad value; str() is one line naming it."""


class OperatorSettings(BaseModel):
    """Everything `shoal operator` is told at start; immutable while it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespaces: tuple[str, ...] = Field(
        (), description="Namespaces to watch; empty = every namespace (cluster-wide)."
    )
    redis_url: str | None = Field(
        None, description="Default Redis for pools that name none (no password in it)."
    )
    redis_password: str | None = Field(
        None, repr=False, description="Password of the default Redis (REDIS_PASSWORD)."
    )
    redis_ca_file: str | None = Field(
        None, description="PEM CA bundle of the default Redis's TLS certificate (REDIS_CA_FILE)."
    )
    tick_seconds: float = Field(1.0, ge=0.05, le=60, description="Scaling loop period.")
    liveness_host: str = "0.0.0.0"
    liveness_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = Field(None, ge=1, le=65535)
    log_level: str = "info"
    log_format: Literal["auto", "json", "console"] = "json"
    #: WORKER_HEARTBEAT_INTERVAL of the worker pods: fresh heartbeats are what scale-down reads.
    worker_heartbeat_seconds: int = Field(5, ge=1, le=300)
    #: Key prefix of pools without spec.redis.keyPrefix (SHOAL_KEY_PREFIX).
    key_prefix: str = Field(DEFAULT_PREFIX, max_length=63, pattern=KEY_PREFIX)
    #: Kubernetes API requests in flight at once (one connection each).
    api_concurrency: int = Field(16, ge=1, le=256)
    pod_name: str | None = None
    pod_namespace: str | None = None
    #: Of several replicas only the holder of this Lease acts (leader.py); off = always act.
    leader_election: bool = True
    lease_name: str = Field("shoal-operator", min_length=1, max_length=253)
    lease_namespace: str | None = Field(
        None, description="Namespace of the Lease; default: the pod's, else the first watched."
    )
    lease_seconds: float = Field(10.0, ge=2, le=300, description="Lease duration.")

    @field_validator("namespaces")
    @classmethod
    def _valid_namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if len(name) > 63 or not DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a namespace name")
        return tuple(dict.fromkeys(value))  # repeated --namespace is harmless

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not re.match(r"^(rediss?|rediss?\+cluster|unix)://\S+$", value):
            raise ValueError(f"{value!r} is not a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("redis_ca_file")
    @classmethod
    def _readable_ca_file(cls, value: str | None) -> str | None:
        if value:
            try:
                with open(value, encoding="utf-8") as pem:
                    text = pem.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {value!r}: {exc}") from None
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise ValueError(f"{value!r} holds no PEM certificate")
        return value or None

    @property
    def lease_home(self) -> str:
        """The Lease's namespace: as set, else the pod's, else the first watched, else default."""
        return self.lease_namespace or self.pod_namespace or next(iter(self.namespaces), "default")

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def redis_url_shown(self) -> str | None:
        """The default Redis for logs, status and Events: without a password it may carry."""
        return None if self.redis_url is None else without_password(self.redis_url)

    @property
    def liveness_endpoint(self) -> str | None:
        if self.liveness_port is None:
            return None
        return f"http://{self.liveness_host}:{self.liveness_port}/healthz"


def without_password(url: str) -> str:
    """``url`` without the password of its user info or of its ``password`` query parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    # Built by hand: urlunsplit drops the "//" of unix:///path.
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?{query}" if query else shown


def load_settings(**values: object) -> OperatorSettings:
    """Validate settings; raise SettingsError with one line per bad setting, named."""
    try:
        return OperatorSettings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
            problems.append(
                f"{name.replace('_', '-')}: {error['msg'].removeprefix('Value error, ')}"
            )
        raise SettingsError("invalid operator settings: " + "; ".join(problems)) from None
