"""Status writes at scale: live figures paced per pool and in total, everything else at once."""

from __future__ import annotations

from shoal_operator.status_pacing import StatusPacer, live_only


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_live_only_means_nothing_but_backlog_in_flight_or_oldest_age_changed() -> None:
    old = {"backlog": 5, "inFlight": 1, "desiredReplicas": 1, "conditions": []}
    assert live_only({**old, "backlog": 6, "inFlight": 2, "oldestJobAgeSeconds": 3.0}, old)
    assert not live_only({**old, "backlog": 6, "desiredReplicas": 2}, old)
    assert not live_only({**old, "conditions": [{"type": "Ready"}]}, old)


def test_a_pool_gets_live_figures_written_at_most_every_min_interval() -> None:
    clock = Clock()
    pacer = StatusPacer(per_second=50, min_interval=5, clock=clock)
    key = ("ns", "p")
    assert pacer.allow(key, prompt=False)
    clock.now = 4.9
    assert not pacer.allow(key, prompt=False)
    assert pacer.allow(key, prompt=True)  # a condition or replicas change: at once
    clock.now = 9.8
    assert not pacer.allow(key, prompt=False)
    clock.now = 9.9
    assert pacer.allow(key, prompt=False)


def drive(times: list[float], *, skip_gaps_before: float = 0.0) -> tuple[list[int], list[float]]:
    """500 pools whose backlog moves on every tick at ``times``: writes per tick, and the gaps
    between a pool's writes (from ``skip_gaps_before`` on)."""
    clock = Clock()
    pacer = StatusPacer(per_second=50, min_interval=5, clock=clock)
    keys = [("ns", f"p{i}") for i in range(500)]
    last: dict[tuple[str, str], float] = {}
    gaps: list[float] = []
    writes_per_tick: list[int] = []
    for now in times:
        clock.now = now
        written = 0
        for key in sorted(keys, key=pacer.last_written):  # the loop's order: oldest first
            if pacer.allow(key, prompt=False):
                written += 1
                if key in last and now >= skip_gaps_before:
                    gaps.append(now - last[key])
                last[key] = now
        writes_per_tick.append(written)
    assert len(last) == 500
    return writes_per_tick, gaps


def test_500_busy_pools_stay_within_the_budget_and_each_is_written_every_10_s() -> None:
    writes_per_tick, gaps = drive([float(tick) for tick in range(120)])
    assert max(writes_per_tick) <= 50
    assert max(gaps) <= 10.0


def test_ticks_that_come_late_still_spend_the_whole_budget() -> None:
    # The loop's ticks are 1 s apart plus the pass's own jitter: a bucket capped at exactly one
    # second's worth lost the excess on every late tick, and every busy pool waited longer.
    times = [tick * 1.03 for tick in range(300)]
    writes_per_tick, gaps = drive(times, skip_gaps_before=50.0)
    assert 49.5 <= sum(writes_per_tick) / times[-1] <= 50.5
    assert max(gaps) <= 10.5  # 500 pools / 50 writes/s, within one late tick
