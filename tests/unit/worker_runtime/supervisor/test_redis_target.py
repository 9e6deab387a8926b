"""Which Redis `shoal up` uses."""

from __future__ import annotations

from worker_runtime.core.spec import RedisSpec
from worker_runtime.supervisor.redis_target import RedisTarget, choose_redis

SPEC = RedisSpec.model_validate({"host": "redis.local", "port": 6380, "db": 2})


def test_flag_wins_over_the_manifest_and_the_environment() -> None:
    got = choose_redis(SPEC, flag="redis://flag:1/0", env_url="redis://env:1/0", env_password=None)
    assert got == RedisTarget("redis://flag:1/0", "--redis-url")


def test_manifest_wins_over_redis_url() -> None:
    got = choose_redis(SPEC, flag=None, env_url="redis://env:1/0", env_password=None)
    assert got == RedisTarget("redis://redis.local:6380/2", "spec.redis")


def test_redis_url_is_the_default_for_pools_without_one() -> None:
    got = choose_redis(None, flag=None, env_url="redis://env:1/0", env_password=None)
    assert got == RedisTarget("redis://env:1/0", "REDIS_URL")


def test_nothing_given_means_a_private_redis() -> None:
    assert choose_redis(None, flag=None, env_url=None, env_password=None).url is None


def test_secret_references_warn_unless_the_environment_supplies_them() -> None:
    spec = RedisSpec.model_validate(
        {"url": "rediss://r:6380/0", "passwordSecretRef": {"name": "r", "key": "p"},
         "caSecretRef": {"name": "ca", "key": "ca.crt"}}
    )  # fmt: skip
    warned = choose_redis(spec, flag=None, env_url=None, env_password=None).warnings
    assert [w.split(":")[0] for w in warned] == [
        "spec.redis.passwordSecretRef",
        "spec.redis.caSecretRef",
    ]
    quiet = choose_redis(spec, flag=None, env_url=None, env_password="pw").warnings
    assert [w.split(":")[0] for w in quiet] == ["spec.redis.caSecretRef"]
    silent = choose_redis(
        spec, flag=None, env_url=None, env_password="pw", env_ca_file="/etc/ca.pem"
    ).warnings
    assert silent == []
