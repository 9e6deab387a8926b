"""Which Redis a pool uses, and what is shown of it: never its password."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shoal_operator.kube import KubeApi
from shoal_operator.redis_clients import RedisClients, RedisConfigError
from shoal_operator.settings import load_settings
from worker_runtime.core.spec import WorkerPoolSpec, load_workerpool


class Secrets:
    """Stands in for the API: ``get`` answers from a dict of Secret bodies by path."""

    def __init__(self, **secrets: dict[str, Any]) -> None:
        self.secrets = secrets

    async def get(self, path: str) -> dict[str, Any] | None:
        return self.secrets.get(path.rsplit("/", 1)[-1])


def spec(**fields: Any) -> WorkerPoolSpec:
    body = {"image": "registry.example/emails:1.4", "queues": ["emails"], **fields}
    manifest = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "emails", "namespace": "team"},
        "spec": body,
    }
    return load_workerpool(manifest).spec


def clients(api: Secrets, **settings: Any) -> RedisClients:
    fake: KubeApi = api  # type: ignore[assignment]
    return RedisClients(load_settings(**settings), fake)


WITH_SECRET = {"url": "redis://redis.team:6379/0", "passwordSecretRef": {"name": "r", "key": "pw"}}


async def test_a_pools_password_comes_from_its_secret() -> None:
    api = Secrets(r={"data": {"pw": base64.b64encode(b"s3cret").decode()}})
    target = await clients(api).target("team", spec(redis=WITH_SECRET))
    assert target.url == "redis://:s3cret@redis.team:6379/0"
    assert target.shown == "redis://redis.team:6379/0"


async def test_a_password_that_is_not_text_is_a_config_error_not_a_crash() -> None:
    # Raised out of the tick, anything but RedisConfigError stopped scaling for every pool.
    api = Secrets(r={"data": {"pw": base64.b64encode(b"\xff\xfe").decode()}})
    with pytest.raises(RedisConfigError, match="Secret r"):
        await clients(api).target("team", spec(redis=WITH_SECRET))


async def test_the_default_redis_is_shown_without_a_password_written_into_its_url() -> None:
    api = Secrets()
    target = await clients(api, redis_url="redis://app:pw1@redis.shoal:6379/0").target(
        "team", spec()
    )
    assert target.url == "redis://app:pw1@redis.shoal:6379/0"  # the connection keeps it
    assert target.shown == "redis://app@redis.shoal:6379/0"
