"""Which Redis a local pool uses, and what the manifest asks that cannot be done locally (pure).

Order: ``--redis-url`` (this run's explicit choice), the manifest's ``spec.redis``, then
``REDIS_URL`` (like the operator's default Redis, for pools that name none); with none of
them, the caller starts a private Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker_runtime.core.spec import RedisSpec
from worker_runtime.core.worker_env import redis_url_of


@dataclass(frozen=True, slots=True)
class RedisTarget:
    url: str | None  # None: start a private Redis
    source: str  # "--redis-url", "spec.redis", "REDIS_URL" or "private"
    warnings: list[str] = field(default_factory=list)


def choose_redis(
    spec_redis: RedisSpec | None,
    *,
    flag: str | None,
    env_url: str | None,
    env_password: str | None,
    env_ca_file: str | None = None,
) -> RedisTarget:
    if flag:
        return RedisTarget(flag, "--redis-url")
    if spec_redis is not None:
        warnings = []
        if spec_redis.password_secret_ref is not None and not env_password:
            warnings.append(
                "spec.redis.passwordSecretRef: Secrets are not read locally; "
                "set REDIS_PASSWORD in the environment"
            )
        if spec_redis.ca_secret_ref is not None and not env_ca_file:
            warnings.append(
                "spec.redis.caSecretRef: Secrets are not read locally; set REDIS_CA_FILE to the "
                "CA bundle (else the system's verifies TLS)"
            )
        url = redis_url_of(spec_redis, default=None)
        if url is not None:
            return RedisTarget(url, "spec.redis", warnings)
    else:
        warnings = []
    # Neither url nor host in spec.redis: the default Redis, as for a pool without spec.redis.
    if env_url:
        return RedisTarget(env_url, "REDIS_URL", warnings)
    return RedisTarget(None, "private", warnings)
