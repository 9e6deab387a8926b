"""The eviction-policy verdict (pure)."""

from __future__ import annotations

import pytest

from worker_runtime.redis_io.redis_checks import eviction_warning


def test_noeviction_and_unknown_are_quiet() -> None:
    assert eviction_warning("noeviction") is None
    assert eviction_warning(None) is None


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "volatile-lru", "allkeys-random", "volatile-ttl"]
)
def test_every_evicting_policy_is_named_with_the_fix(policy: str) -> None:
    warning = eviction_warning(policy)
    assert warning is not None
    assert f"maxmemory-policy is {policy}" in warning
    assert "set maxmemory-policy noeviction" in warning
