"""Which Redis a pool uses, and what is shown of it: never its password."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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


def secret(labelled: bool = True, **data: bytes) -> dict[str, Any]:
    labels = {"shoal.dev/redis-credentials": "true"} if labelled else {}
    values = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return {"metadata": {"labels": labels}, "data": values}


async def test_a_pools_password_comes_from_its_secret() -> None:
    api = Secrets(r=secret(pw=b"s3cret"))
    target = await clients(api).target("team", spec(redis=WITH_SECRET))
    assert target.url == "redis://:s3cret@redis.team:6379/0"
    assert target.shown == "redis://redis.team:6379/0"


async def test_a_password_that_is_not_text_is_a_config_error_not_a_crash() -> None:
    # Raised out of the tick, anything but RedisConfigError stopped scaling for every pool.
    api = Secrets(r=secret(pw=b"\xff\xfe"))
    with pytest.raises(RedisConfigError, match="Secret r"):
        await clients(api).target("team", spec(redis=WITH_SECRET))


async def test_the_default_redis_is_shown_without_a_password_written_into_its_url() -> None:
    api = Secrets()
    target = await clients(api, redis_url="redis://app:pw1@redis.shoal:6379/0").target(
        "team", spec()
    )
    assert target.url == "redis://app:pw1@redis.shoal:6379/0"  # the connection keeps it
    assert target.shown == "redis://app@redis.shoal:6379/0"


async def test_a_secret_without_the_opt_in_label_is_refused_naming_the_label() -> None:
    api = Secrets(r=secret(labelled=False, pw=b"s3cret"))
    with pytest.raises(RedisConfigError) as refused:
        await clients(api).target("team", spec(redis=WITH_SECRET))
    message = str(refused.value)
    assert message.startswith("spec.redis.passwordSecretRef: Secret team/r is not labelled")
    assert "kubectl label secret -n team r shoal.dev/redis-credentials=true" in message
    assert "s3cret" not in message


async def test_default_redis_with_a_password_refuses_a_pool_without_its_own_copy() -> None:
    default = clients(Secrets(), redis_url="redis://redis.shoal:6379/0", redis_password="op-pw")
    for pool_spec in (spec(), spec(redis={"keyPrefix": "team"})):
        with pytest.raises(RedisConfigError) as refused:
            await default.target("team", pool_spec)
        assert "the default Redis needs a password" in str(refused.value)
        assert "namespace team" in str(refused.value)
        assert "spec.redis.passwordSecretRef" in str(refused.value)


async def test_default_redis_with_the_pools_password_is_read_with_that_password() -> None:
    api = Secrets(r=secret(pw=b"team-pw"))
    default = clients(api, redis_url="redis://redis.shoal:6379/0", redis_password="op-pw")
    pool_spec = spec(redis={"passwordSecretRef": {"name": "r", "key": "pw"}})
    target = await default.target("team", pool_spec)
    # The workers' password, not the operator's: a wrong one shows in the pool's status.
    assert target.url == "redis://:team-pw@redis.shoal:6379/0"
    assert target.shown == "redis://redis.shoal:6379/0"


async def test_default_redis_with_a_private_ca_refuses_a_pool_without_one(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    default = clients(Secrets(), redis_url="rediss://redis.shoal:6380/0", redis_ca_file=str(ca))
    with pytest.raises(RedisConfigError, match=r"private CA.*spec\.redis\.caSecretRef"):
        await default.target("team", spec())


async def test_a_pools_ca_is_written_to_a_file_the_client_trusts() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    api = Secrets(ca=secret(**{"ca.crt": pem}))
    ref = {"name": "ca", "key": "ca.crt"}
    target = await clients(api).target("team", spec(redis={"url": "rediss://r:6380/0",
                                                           "caSecretRef": ref}))  # fmt: skip
    assert target.url.startswith("rediss://r:6380/0?ssl_ca_certs=")
    path = Path(unquote(target.url.split("ssl_ca_certs=", 1)[1]))
    assert await asyncio.to_thread(path.read_bytes) == pem
    assert target.ca_ref == "spec.redis.caSecretRef (Secret team/ca)"
    assert target.shown == "rediss://r:6380/0"


async def test_a_ca_secret_without_a_certificate_is_a_config_error() -> None:
    api = Secrets(ca=secret(**{"ca.crt": b"hello"}))
    ref = {"name": "ca", "key": "ca.crt"}
    with pytest.raises(
        RedisConfigError, match=r"caSecretRef: Secret ca key 'ca\.crt' holds no PEM"
    ):
        await clients(api).target("team", spec(redis={"url": "rediss://r/0", "caSecretRef": ref}))


async def test_key_prefix_from_the_pool_else_the_operators() -> None:
    default = clients(Secrets(), redis_url="redis://redis.shoal:6379/0")
    assert (await default.target("team", spec())).prefix == "shoal"
    own = await default.target("team", spec(redis={"keyPrefix": "team-a"}))
    assert own.prefix == "team-a"
    assert own.scope == ("redis://redis.shoal:6379/0", "team-a")


async def test_a_pool_naming_no_secret_gets_its_target_worked_out_once() -> None:
    rc = clients(Secrets(), redis_url="redis://default:6379/0")
    first = await rc.target("team", spec())
    assert await rc.target("team", spec()) is first  # asked every tick, for every pool
    other = await rc.target("team", spec(redis={"host": "r2", "keyPrefix": "mail"}))
    assert other.url == "redis://r2:6379/0"
    assert other.prefix == "mail"
    assert await rc.target("team", spec()) is first
    with pytest.raises(RedisConfigError):  # errors are worked out again each time
        await rc.target("team", spec(redis={"passwordSecretRef": {"name": "gone", "key": "p"}}))
