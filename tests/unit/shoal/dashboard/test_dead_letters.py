"""Newest-first pages over the oldest-first dead-letter API (pure parts)."""

from __future__ import annotations

from shoal.dashboard.dead_letters import matches, oldest_first_range
from worker_runtime.core.codec import JobRecord


def test_newest_first_positions_map_onto_oldest_first_ranges() -> None:
    assert oldest_first_range(100, start=0, count=10) == (90, 10)
    assert oldest_first_range(100, start=95, count=10) == (0, 5)
    assert oldest_first_range(100, start=100, count=10) == (0, 0)
    assert oldest_first_range(0, start=0, count=10) == (0, 0)


def test_filter_matches_id_error_or_traceback_ignoring_case() -> None:
    job = JobRecord(id="abc123", queue="q", state="dead", error="SMTP refused", traceback="tb X")
    assert all(matches(job, n) for n in ("ABC", "smtp", "tb x"))
    assert not matches(job, "nothing")
