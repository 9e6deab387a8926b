"""One Redis client per distinct Redis the pools use, and the password and CA each needs.

Pools without ``spec.redis`` (or with neither url nor host in it) use the operator's default
(``--redis-url`` + ``REDIS_PASSWORD`` + ``REDIS_CA_FILE``). Workers cannot read the operator's
own Secrets (they live in its namespace), so a default Redis with a password or a private CA
needs the pool to name its own copy (``passwordSecretRef``/``caSecretRef`` in its namespace);
without it the pool is refused with a condition naming the fix, and never scaled up.

Secrets a pool names are read through the API, only in the pool's namespace and only when they
carry the label ``shoal.dev/redis-credentials=true`` (see docs/operator.md, trust model), and
cached briefly; a pool whose Secret cannot be used is reported Degraded and its size holds.
With a pool's password on the default Redis, the operator reads that pool's queues with the
pool's password: a wrong one shows in the pool's conditions, not as unready workers at max.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shoal_operator.kube import ApiError, KubeApi, secret_path
from shoal_operator.settings import OperatorSettings
from worker_runtime.config import with_ca_file, with_password
from worker_runtime.core.keys import DEFAULT_PREFIX
from worker_runtime.core.spec import RedisSpec, SecretKeyRef, WorkerPoolSpec
from worker_runtime.core.worker_env import key_prefix_of, redis_url_of
from worker_runtime.redis_io.connection import CONNECTION_ERRORS, RedisClient, connect

SECRET_TTL_SECONDS = 60.0
#: A Secret that could not be read is asked for again after this long, not on every tick.
SECRET_ERROR_TTL_SECONDS = 15.0
#: The label a Secret must carry before a WorkerPool may have the operator use it.
CREDENTIALS_LABEL = "shoal.dev/redis-credentials"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
TARGETS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where a pool's queues live: ``url`` carries the password (never logged or shown)."""

    url: str
    shown: str  # the URL without password, for messages
    prefix: str = DEFAULT_PREFIX  # of the queues' keys: pools on one Redis differ by it
    ca_ref: str | None = None  # where the CA came from, to name it when TLS fails

    @property
    def scope(self) -> tuple[str, str]:
        """Pools with the same scope share one keyspace: one read, and one queue each."""
        return (self.shown, self.prefix)


class RedisConfigError(Exception):
    """The pool's Redis cannot be used as configured; str() is one line for status and Events."""


class RedisClients:
    def __init__(self, settings: OperatorSettings, api: KubeApi) -> None:
        self._settings = settings
        self._api = api
        self._clients: dict[str, RedisClient] = {}
        #: targets of pools that name no Secret, by (namespace, spec.redis): asked every tick
        self._targets: dict[tuple[str, RedisSpec | None], RedisTarget] = {}
        self._secrets: dict[tuple[str, str, str], tuple[float, str | RedisConfigError]] = {}
        self._ca_dir: Path | None = None
        self._ca_files: dict[str, str] = {}  # PEM text -> the file holding it

    async def target(self, namespace: str, spec: WorkerPoolSpec) -> RedisTarget:
        """The pool's Redis, password included; RedisConfigError when it cannot be had."""
        redis = spec.redis
        password_ref = redis.password_secret_ref if redis else None
        ca_ref = redis.ca_secret_ref if redis else None
        plain = password_ref is None and ca_ref is None  # no Secret: the same every tick
        if plain and (known := self._targets.get((namespace, redis))) is not None:
            return known
        target = await self._target(namespace, spec, password_ref, ca_ref)
        if plain:
            if len(self._targets) >= TARGETS_KEPT:
                self._targets.clear()  # specs that changed leave stale entries behind
            self._targets[(namespace, redis)] = target
        return target

    async def _target(
        self,
        namespace: str,
        spec: WorkerPoolSpec,
        password_ref: SecretKeyRef | None,
        ca_ref: SecretKeyRef | None,
    ) -> RedisTarget:
        redis = spec.redis
        prefix = key_prefix_of(spec, default=self._settings.key_prefix)
        if redis is None or redis.is_default():
            base = self._default_base(namespace, password_ref, ca_ref)
            shown = self._settings.redis_url_shown or base
            password = None if password_ref else self._settings.redis_password
            ca_file = None if ca_ref else self._settings.redis_ca_file
        else:
            base = shown = redis_url_of(redis, default=None) or ""
            password = ca_file = None
        if password_ref is not None:
            password = await self._secret(namespace, password_ref, "passwordSecretRef")
        if ca_ref is not None:
            ca_file = self._ca_file(await self._secret(namespace, ca_ref, "caSecretRef"), ca_ref)
        url = with_ca_file(with_password(base, password), ca_file)
        if ca_ref is not None:
            where: str | None = f"spec.redis.caSecretRef (Secret {namespace}/{ca_ref.name})"
        else:
            where = None if ca_file is None else "the operator's REDIS_CA_FILE"
        return RedisTarget(url=url, shown=shown, prefix=prefix, ca_ref=where)

    def _default_base(
        self, namespace: str, password_ref: SecretKeyRef | None, ca_ref: SecretKeyRef | None
    ) -> str:
        """The default Redis's URL, or why this pool cannot use it as its spec stands."""
        settings = self._settings
        if settings.redis_url is None:
            raise RedisConfigError(
                "no Redis: spec.redis names no url or host and the operator has no "
                "--redis-url/REDIS_URL"
            )
        label = f"labelled {CREDENTIALS_LABEL}=true"
        if settings.redis_password and password_ref is None:
            raise RedisConfigError(
                "the default Redis needs a password that workers cannot read from the "
                f"operator's Secret: put it in a Secret in namespace {namespace} ({label}) "
                "and set spec.redis.passwordSecretRef"
            )
        if settings.redis_ca_file and ca_ref is None:
            raise RedisConfigError(
                "the default Redis uses a private CA that workers cannot read from the "
                f"operator's Secret: put it in a Secret in namespace {namespace} ({label}) "
                "and set spec.redis.caSecretRef"
            )
        return settings.redis_url

    def _ca_file(self, pem: str, ref: SecretKeyRef) -> str:
        """A file holding the CA bundle (named by its digest: a changed CA, a new client)."""
        if PEM_CERTIFICATE not in pem:
            raise RedisConfigError(
                f"spec.redis.caSecretRef: Secret {ref.name} key {ref.key!r} holds no PEM "
                "certificate"
            )
        known = self._ca_files.get(pem)
        if known is not None:
            return known
        if self._ca_dir is None:
            self._ca_dir = Path(tempfile.mkdtemp(prefix="shoal-operator-ca-"))
        path = self._ca_dir / f"{hashlib.sha256(pem.encode()).hexdigest()[:24]}.pem"
        path.write_text(pem)
        self._ca_files[pem] = str(path)
        return str(path)

    async def _secret(self, namespace: str, ref: SecretKeyRef, field: str) -> str:
        name, key = ref.name, ref.key
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
            value = await self._read_secret(namespace, name, key, f"spec.redis.{field}")
        except RedisConfigError as exc:
            self._secrets[cache_key] = (now, exc)
            raise
        self._secrets[cache_key] = (now, value)
        return value

    async def _read_secret(self, namespace: str, name: str, key: str, field: str) -> str:
        try:
            secret = await self._api.get(secret_path(namespace, name))
        except ApiError as exc:
            if exc.status == 403:
                raise RedisConfigError(
                    f"{field}: the operator may not read Secret "
                    f"{namespace}/{name} (grant it get on secrets, e.g. chart rbac.extraRules)"
                ) from None
            raise RedisConfigError(f"{field}: {exc}") from None
        data = (secret or {}).get("data") or {}
        if secret is None or key not in data:
            what = "does not exist" if secret is None else f"has no key {key!r}"
            raise RedisConfigError(f"{field}: Secret {name} {what}")
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(CREDENTIALS_LABEL) != "true":
            # Opt-in: a pool author must not make the operator send any Secret of the
            # namespace to a host of their choice (docs/operator.md, trust model).
            raise RedisConfigError(
                f"{field}: Secret {namespace}/{name} is not labelled "
                f"{CREDENTIALS_LABEL}=true, which allows WorkerPools to use it as Redis "
                f"credentials (kubectl label secret -n {namespace} {name} "
                f"{CREDENTIALS_LABEL}=true)"
            )
        try:
            return base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise RedisConfigError(
                f"{field}: Secret {name} key {key!r} is not UTF-8 text"
            ) from None

    def client(self, target: RedisTarget) -> RedisClient:
        client = self._clients.get(target.url)
        if client is None:
            # Few connections: one pipelined read per tick, plus heartbeats. No timeout per
            # reply: the loop bounds the whole read (_observe), and a timer for each of a
            # thousand replies was a tenth of a busy tick.
            client = connect(target.url, max_connections=4, socket_timeout=None)
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
        if self._ca_dir is not None:
            shutil.rmtree(self._ca_dir, ignore_errors=True)
            self._ca_dir, self._ca_files = None, {}

    @staticmethod
    async def _close(client: RedisClient) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            await client.aclose()
