"""Rates and sparklines from queue samples (pure)."""

from __future__ import annotations

from shoal.dashboard.history import QueueHistory, bucket_series, rates_between, sparkline_points
from worker_runtime.producing.queue_snapshot import QueueSnapshot


def snap(at_ms: int, *, enqueued: int = 0, completed: int = 0, waiting: int = 0) -> QueueSnapshot:
    return QueueSnapshot(
        queue="q", at_ms=at_ms, waiting=waiting, due_delayed=0, delayed=0, active=0, dead=0,
        enqueued=enqueued, completed=completed, failed=0, busy_ms=0,
        oldest_waiting_enqueued_ms=None,
    )  # fmt: skip


def test_rates_are_counter_deltas_over_time_and_never_negative() -> None:
    rates = rates_between(snap(0, enqueued=10), snap(2000, enqueued=30, completed=4))
    assert (rates.arrival, rates.finish) == (10.0, 2.0)
    reset = rates_between(snap(0, enqueued=100), snap(1000, enqueued=5))  # keys deleted
    assert reset.arrival == 0.0


def test_history_keeps_its_window_and_rates_use_the_last_minute() -> None:
    history = QueueHistory(window_ms=120_000)
    for second in range(0, 181):
        history.add(snap(second * 1000, enqueued=second * (1 if second < 120 else 5)))
    assert history.samples[0].at_ms == 60_000
    history.add(snap(100_000))  # a step back in time is ignored
    assert history.latest is not None
    assert history.latest.at_ms == 180_000
    assert history.rates().arrival == (180 * 5 - 120 * 5) / 60


def test_bucket_series_averages_per_slice_and_starts_at_the_first_sample() -> None:
    samples = [snap(t * 1000, enqueued=t * 2, waiting=t) for t in range(0, 31)]
    arrivals, finishes, backlog = bucket_series(samples, buckets=60, window_ms=60_000)
    assert len(arrivals) == len(backlog) == 31  # 30 s of a 60 s window: half the slices
    assert arrivals[1:] == [2.0] * 30
    assert finishes == [0.0] * 31
    assert backlog[-1] == 30


def test_sparkline_is_right_aligned_and_scaled() -> None:
    assert sparkline_points([]) == ""
    points = sparkline_points([0, 1], slots=3, top=2, width=100, height=12)
    assert points == "50.0,11.0 100.0,6.0"
