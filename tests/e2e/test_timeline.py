"""Unit tests of the end-to-end timeline report (no marker: pure, milliseconds)."""

from __future__ import annotations

from tests.e2e.timeline import Target, Timeline


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_timeline_reports_figures_against_targets_and_bounds() -> None:
    clock = FakeClock()
    tl = Timeline(clock)
    tl.mark("install")
    clock.now += 5
    assert tl.mark("ready") == 5
    clock.now += 1
    assert tl.mark("ready") == 5  # the first time counts
    targets = (
        Target("install -> ready", "install", "ready", 4, 30),
        Target("install -> zero", "install", "zero", 10, 60),
    )
    assert tl.lines(targets) == [
        "     0.0 s  install",
        "     5.0 s  ready",
        "install -> ready: 5.0 s (target <= 4 s: MISSED)",
        "install -> zero: not reached",
    ]
    # A missed target is printed; only the generous bound (or a missing moment) fails a test.
    assert tl.over_bound(targets) == ["install -> zero"]
    assert tl.over_bound(targets[:1]) == []


def test_moments_from_other_clocks_land_on_the_timeline_in_order() -> None:
    clock, wall = FakeClock(), FakeClock(1_000_000.0)
    tl = Timeline(clock, wall)
    clock.now += 3
    tl.mark("pod running")
    # A job leased at wall-clock 1,000,001.5 (Redis' clock): 1.5 s after the origin.
    assert tl.mark_at("first job started", 1_000_001.5) == 1.5
    assert tl.lines() == ["     1.5 s  first job started", "     3.0 s  pod running"]
