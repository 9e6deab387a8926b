"""Operator settings: bad values fail with one line naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

from shoal_operator.settings import SettingsError, load_settings


def test_defaults_are_cluster_wide_with_a_one_second_tick() -> None:
    s = load_settings()
    assert s.clusterwide
    assert s.tick_seconds == 1.0
    assert s.liveness_endpoint is None
    assert s.redis_url is None
    assert s.key_prefix == "shoal"


def test_namespaces_and_endpoints() -> None:
    s = load_settings(namespaces=("a", "b", "a"), liveness_port=8080, liveness_host="127.0.0.1")
    assert s.namespaces == ("a", "b")
    assert not s.clusterwide
    assert s.liveness_endpoint == "http://127.0.0.1:8080/healthz"


def test_the_default_redis_password_stays_out_of_the_url_and_repr() -> None:
    s = load_settings(redis_url="redis://redis.shoal:6379/0", redis_password="p@ss")
    assert s.redis_url == "redis://redis.shoal:6379/0"
    assert "p@ss" not in repr(s)


def test_a_ca_file_that_is_not_a_pem_certificate_fails_at_start(tmp_path: Any) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(SettingsError, match=r"redis-ca-file: .*holds no PEM certificate"):
        load_settings(redis_url="rediss://r:6380/0", redis_ca_file=str(bad))
    with pytest.raises(SettingsError, match="redis-ca-file: cannot read"):
        load_settings(redis_url="rediss://r:6380/0", redis_ca_file=str(tmp_path / "missing"))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"tick_seconds": 0}, "tick-seconds"),
        ({"namespaces": ("Bad_NS",)}, "namespaces"),
        ({"redis_url": "http://x"}, "redis-url"),
        ({"metrics_port": 70000}, "metrics-port"),
        ({"worker_heartbeat_seconds": 0}, "worker-heartbeat-seconds"),
    ],
)
def test_bad_values_name_the_setting(values: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(**values)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"invalid operator settings: {named}:")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://redis.shoal:6379/0", "redis://redis.shoal:6379/0"),
        ("redis://:p%40ss@redis.shoal:6379/0", "redis://redis.shoal:6379/0"),
        ("rediss://app:pw@redis.shoal:6380/1", "rediss://app@redis.shoal:6380/1"),
        ("unix:///run/redis.sock?db=2&password=pw", "unix:///run/redis.sock?db=2"),
    ],
)
def test_the_default_redis_is_shown_without_its_password(url: str, shown: str) -> None:
    assert load_settings(redis_url=url).redis_url_shown == shown
