"""The real-cluster scaling figures from a lane's samples (pure) and the compressed traces."""

from __future__ import annotations

from bench import scaling_figures as sf
from bench import traces
from bench.scaling_figures import Sample


def s(t: float, waiting: int, active: int, pods: int, desired: int) -> Sample:
    return Sample(t, waiting, active, pods, pods, desired)


def test_figures_count_cost_events_and_what_happened_after_the_queue_emptied() -> None:
    samples = [
        s(0, 5, 0, 0, 1),  # woken: desired 1
        s(1, 3, 2, 1, 2),
        s(2, 0, 2, 2, 2),  # the last arrival at 2 s: not yet empty (2 running)
        s(3, 0, 0, 2, 1),  # empty from here
        s(4, 0, 0, 1, 2),  # a scale-up after empty: counted against the target
        s(5, 0, 0, 0, 0),
    ]
    f = sf.figures(label="x", jobs=4, last_arrival=2, samples=samples, waits=[0.5, 1, 3],
                   interrupted=1)  # fmt: skip
    assert f.replica_seconds == 6  # pods x 1 s per sample
    assert f.peak == 2
    assert f.scale_events == 4  # desired 1 -> 2 -> 1 -> 2 -> 0
    assert (f.emptied_at, f.zero_at, f.after_empty) == (3, 5, 3)
    assert f.ups_after_empty == 1
    # The job that never started counts as waiting until the window closed (6 s - 2 s).
    assert (f.started, f.p50, f.p99) == (3, 1, 4)
    assert "(1 never started)" in sf.row("t", f)
    assert sf.row("t", f).endswith("| 3 | 2 s after empty |")


def test_a_pool_not_back_to_zero_is_reported_as_such() -> None:
    samples = [s(0, 1, 0, 1, 1), s(1, 0, 0, 1, 1)]
    f = sf.figures(label="x", jobs=1, last_arrival=0, samples=samples, waits=[0.1], interrupted=0)
    assert f.zero_at is None
    assert sf.row("t", f).endswith("| 1+ | not within 2 s |")


def test_verdicts_name_each_target_met_or_missed() -> None:
    samples = [s(0, 0, 0, 1, 1)]
    shoal = sf.figures(label="Shoal", jobs=1, last_arrival=0, samples=samples, waits=[1.0],
                       interrupted=0)  # fmt: skip
    keda = sf.figures(label="KEDA", jobs=1, last_arrival=0, samples=samples * 2, waits=[2.5],
                      interrupted=3)  # fmt: skip
    lines = sf.verdicts("steady", shoal, keda, keda)
    assert lines[0].endswith("p95 wait 1.0 s <= 0.33 x KEDA defaults's 2.5 s: MISSED")
    assert lines[1].endswith("p95 wait 1.0 s <= 0.5 x KEDA tuned's 2.5 s: met")
    assert "interrupted by scale-down 0 (target 0; KEDA 3, KEDA 3): met" in lines[3]
    # From zero: pod start bounds every scaler, no wait target (the figures are still printed).
    assert not any("p95" in line for line in sf.verdicts("from-zero", shoal, keda, keda))


def test_compressed_traces_keep_the_rates_and_shorten_the_phases() -> None:
    original = traces.steady(1)
    short = traces.compressed(original, factor=10, seed=1)
    assert short.horizon == original.horizon / 10
    assert 0.9 < len(short.arrivals) / (len(original.arrivals) / 10) < 1.1  # same rate
    assert short.arrivals == sorted(short.arrivals)
    assert short == traces.compressed(original, factor=10, seed=1)  # seeded
    episode = traces.windowed(original, start=100, end=110)
    assert episode.horizon == 10
    assert all(0 <= a < 10 for a in episode.arrivals)
