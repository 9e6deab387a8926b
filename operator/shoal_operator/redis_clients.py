"""One Redis client per distinct Redis the pools use, and the password each needs.

Pools without ``spec.redis`` share the operator's default (``--redis-url`` + ``REDIS_PASSWORD``).
A pool's own Redis gets its password from the Secret its ``passwordSecretRef`` names, read
through the API and cached briefly; without ``get`` on that Secret the pool is reported
Degraded with the reason, and its size holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from dataclasses import dataclass

from shoal_operator.kube import ApiError, KubeApi, secret_path
from shoal_operator.settings import OperatorSettings
from worker_runtime.config import with_password
from worker_runtime.core.spec import WorkerPoolSpec
from worker_runtime.core.worker_env import redis_url_of
from worker_runtime.redis_io.connection import CONNECTION_ERRORS, RedisClient, connect

SECRET_TTL_SECONDS = 60.0
#: A Secret that could not be read is asked for again after this long, not on every tick.
SECRET_ERROR_TTL_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where a pool's queues live: ``url`` carries the password (never logged or shown)."""

    url: str
    shown: str  # the URL without password, for messages


class RedisConfigError(Exception):
    """The pool's Redis cannot be used as configured; str() is one line for status and Events."""


class RedisClients:
    def __init__(self, settings: OperatorSettings, api: KubeApi) -> None:
        self._settings = settings
        self._api = api
        self._clients: dict[str, RedisClient] = {}
        self._secrets: dict[tuple[str, str, str], tuple[float, str | RedisConfigError]] = {}

    async def target(self, namespace: str, spec: WorkerPoolSpec) -> RedisTarget:
        """The pool's Redis, password included; RedisConfigError when it cannot be had."""
        if spec.redis is None:
            url = self._settings.default_redis_connect_url
            shown = self._settings.redis_url_shown
            if url is None or shown is None:
                raise RedisConfigError(
                    "no Redis: spec.redis is unset and the operator has no --redis-url/REDIS_URL"
                )
            return RedisTarget(url=url, shown=shown)
        shown = redis_url_of(spec.redis, default=None)
        assert shown is not None  # the spec requires url or host
        ref = spec.redis.password_secret_ref
        if ref is None:
            return RedisTarget(url=shown, shown=shown)
        password = await self._secret(namespace, ref.name, ref.key)
        return RedisTarget(url=with_password(shown, password), shown=shown)

    async def _secret(self, namespace: str, name: str, key: str) -> str:
        cache_key = (namespace, name, key)
        cached = self._secrets.get(cache_key)
        now = time.monotonic()
        if cached is not None:
            at, value = cached
            ttl = SECRET_ERROR_TTL_SECONDS if isinstance(value, Exception) else SECRET_TTL_SECONDS
            if now - at < ttl:
                if isinstance(value, RedisConfigError):
                    raise value
                return value
        try:
            password = await self._read_secret(namespace, name, key)
        except RedisConfigError as exc:
            self._secrets[cache_key] = (now, exc)
            raise
        self._secrets[cache_key] = (now, password)
        return password

    async def _read_secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await self._api.get(secret_path(namespace, name))
        except ApiError as exc:
            if exc.status == 403:
                raise RedisConfigError(
                    f"spec.redis.passwordSecretRef: the operator may not read Secret "
                    f"{namespace}/{name} (grant it get on secrets, e.g. chart rbac.extraRules)"
                ) from None
            raise RedisConfigError(f"spec.redis.passwordSecretRef: {exc}") from None
        data = (secret or {}).get("data") or {}
        if secret is None or key not in data:
            what = "does not exist" if secret is None else f"has no key {key!r}"
            raise RedisConfigError(f"spec.redis.passwordSecretRef: Secret {name} {what}")
        try:
            return base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise RedisConfigError(
                f"spec.redis.passwordSecretRef: Secret {name} key {key!r} is not a UTF-8 password"
            ) from None

    def client(self, target: RedisTarget) -> RedisClient:
        client = self._clients.get(target.url)
        if client is None:
            # Few connections: one pipelined read per tick, plus heartbeats.
            client = connect(target.url, max_connections=4)
            self._clients[target.url] = client
        return client

    async def retain(self, urls: set[str]) -> None:
        """Close clients of Redis servers no pool uses any more."""
        for url in [u for u in self._clients if u not in urls]:
            await self._close(self._clients.pop(url))

    async def close(self) -> None:
        for client in self._clients.values():
            await self._close(client)
        self._clients.clear()

    @staticmethod
    async def _close(client: RedisClient) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await client.aclose()
