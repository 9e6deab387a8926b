"""The machinery the WorkerPool models share: cross-field rules, the strict base model, patterns.

A ``Rule`` is checked in Python by ``_RuleChecked`` and rendered as a CEL validation into the CRD
by ``_cel_rules``; ``_Spec`` is the strict, camelCase, frozen base of every spec model. The name
and quantity patterns are Kubernetes' own, so the API server and `shoal up` agree on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from worker_runtime.core.keys import QUEUE_NAME_RE

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
APP_REF = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# userinfo with a colon before the host (redis://user:secret@host, redis://:secret@host), or a
# password query parameter (redis://host/0?password=secret), which redis-py also reads.
URL_WITH_PASSWORD = r"^rediss?://([^/@?#]*:[^/@?#]*@|[^?#]*[?]([^#]*&)?password=)"
#: Worker env vars the operator sets from the spec (and Redis connection ones it must control:
#: the operator reads the same Redis the workers use). spec.env may not set them.
#: The volume (and its mount) of spec.redis.caSecretRef in worker pods: users may not take them.
REDIS_CA_VOLUME = "redis-ca"
REDIS_CA_DIR = "/etc/shoal/redis-ca"

RESERVED_ENV = (
    "REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_TLS", "REDIS_CA_FILE",
    "SHOAL_KEY_PREFIX", "SHOAL_POOL", "POD_NAME", "POD_NAMESPACE",
    "WORKER_QUEUES", "WORKER_CONCURRENCY", "WORKER_MAX_JOBS_PER_WORKER", "WORKER_TIMEOUT_SECONDS",
    "WORKER_RETRY", "WORKER_RATE_LIMIT", "WORKER_SHUTDOWN_GRACE_SECONDS",
    "WORKER_HEARTBEAT_INTERVAL", "HEALTH_PORT", "HEALTH_HOST", "ENABLE_HEALTH_CHECKS",
)  # fmt: skip
#: A Redis key prefix: no braces, so the queue's {hash tag} stays the only one in a key.
KEY_PREFIX = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$"


@dataclass(frozen=True)
class Rule:
    """A rule across fields: checked here in Python and rendered as CEL into the CRD.

    ``field`` is the wire name the error is reported on (the CEL ``fieldPath``); ``cel`` and
    ``holds`` must say the same thing. test_crd.py checks every rule reaches the CRD; the broken
    manifests of test_spec.py are the cases to replay against an API server.
    """

    field: str
    message: str
    cel: str
    holds: Callable[[Any], bool]


def _cel_rules(schema: dict[str, Any], cls: type[Any]) -> None:
    """Put a model's rules into its JSON schema as Kubernetes CEL validations."""
    rules = [r for r in getattr(cls, "rules", ()) if r.cel]
    if rules:
        schema["x-kubernetes-validations"] = [
            {"rule": r.cel, "message": r.message, "fieldPath": f".{r.field}"} for r in rules
        ]


class _RuleChecked(BaseModel):
    """Runs a model's ``rules`` after its fields validated; reports every broken rule at once."""

    model_config = ConfigDict(json_schema_extra=_cel_rules)
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        broken = [rule for rule in type(self).rules if not rule.holds(self)]
        if broken:
            raise PydanticCustomError(
                "cross_field",
                "{summary}",
                {
                    "summary": "; ".join(f"{r.field}: {r.message}" for r in broken),
                    "problems": [(r.field, r.message) for r in broken],
                },
            )
        return self


class _Spec(_RuleChecked):
    # strict: "10" is not an integer for the API server either, so not for us.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def _defaults_of(cls: type[BaseModel]) -> dict[str, Any]:
    # The CRD default of a nested object is the whole object: the API server checks CEL rules
    # against a default as written, before filling the defaults inside it.
    return {"default": cls().model_dump(mode="json", by_alias=True, exclude_none=True)}


def parse_quantity(text: str | int) -> Decimal:
    """A Kubernetes resource quantity ("100m", "1.5Gi", "2e3", 4) as a number."""
    if isinstance(text, int):
        return Decimal(text)
    if len(text) > 64 or not re.fullmatch(QUANTITY, text):
        raise ValueError(f"{text!r} is not a quantity (e.g. 100m, 0.5, 128Mi, 2Gi)")
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    decimal = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "k": "1e3", "M": "1e6", "G": "1e9"}
    decimal |= {"T": "1e12", "P": "1e15", "E": "1e18"}
    if text[-2:] in binary:
        return Decimal(text[:-2]) * binary[text[-2:]]
    if text[-1] in decimal:
        return Decimal(text[:-1]) * Decimal(decimal[text[-1]])
    try:
        return Decimal(text)  # plain number or exponent form
    except InvalidOperation as exc:  # pragma: no cover - the pattern already ruled this out
        raise ValueError(f"{text!r} is not a quantity") from exc


def _quantity(value: object) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a quantity string such as 100m or 128Mi, or an integer")
    parse_quantity(value)
    return value


Quantity = Annotated[
    str | int,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "maxLength": 64,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
QueueName = Annotated[str, Field(pattern=QUEUE_NAME_RE.pattern, max_length=63)]


def _no_duplicates(key: Callable[[Any], str]) -> AfterValidator:
    # No CEL needed: list-type set/map makes the API server refuse duplicates itself.
    def check(items: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for k in map(key, items):
            if k in seen:
                raise ValueError(f"duplicate {k!r}")
            seen.add(k)
        return items

    return AfterValidator(check)
