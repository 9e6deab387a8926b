"""The alert token bucket (time is a parameter)."""

from __future__ import annotations

import pytest

from worker_runtime.observing.alerts import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=1.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(0.0) == pytest.approx(1.0)
    assert bucket.take(0.5) is False
    assert bucket.take(1.0) is True
    assert bucket.take(100.0) is True  # refills, but never beyond the burst
    assert sum(bucket.take(100.0) for _ in range(10)) == 2


def test_requests_in_a_storm_are_bounded() -> None:
    bucket = TokenBucket(rate=10 / 60, burst=10, now=0.0)
    granted = sum(bucket.take(t / 100) for t in range(60_00))  # 6000 tries over 60 s
    assert granted <= 10 + 10
