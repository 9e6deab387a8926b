"""Unit tests of the end-to-end timeline report (no marker: pure, milliseconds)."""

from __future__ import annotations

from tests.e2e.timeline import Target, Timeline


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

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
