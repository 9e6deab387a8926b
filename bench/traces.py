"""Arrival traces for the scaling simulation: when jobs arrive and how long each one runs.

Every trace is generated from a seeded RNG, so a run is reproducible to the job. Rates are
jobs per second; durations are seconds of work per job.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    arrivals: list[float]  # sorted arrival times
    durations: list[float]  # durations[i] belongs to arrivals[i]
    horizon: float  # seconds the trace spans (the simulation runs on until the queue is empty)


def poisson_arrivals(
    rng: random.Random, *, rate: Callable[[float], float], peak: float, horizon: float
) -> list[float]:
    """A non-homogeneous Poisson process by thinning: ``rate(t)`` must stay <= ``peak``."""
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= horizon:
            return times
        if rng.random() * peak < rate(t):
            times.append(t)


def lognormal_durations(rng: random.Random, n: int, *, mean: float, cap: float) -> list[float]:
    """Right-skewed run times (sigma 0.6) with the given mean, never above ``cap``."""
    sigma = 0.6
    mu = math.log(mean) - sigma**2 / 2
    return [min(cap, rng.lognormvariate(mu, sigma)) for _ in range(n)]


def steady(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 1800.0
    arrivals = poisson_arrivals(rng, rate=lambda t: 30.0, peak=30.0, horizon=horizon)
    durations = lognormal_durations(rng, len(arrivals), mean=0.5, cap=60)
    return Trace("steady", "Poisson 30 jobs/s, 0.5 s jobs, 30 min", arrivals, durations, horizon)


def bursts(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 2700.0

    def rate(t: float) -> float:  # 2 jobs/s, and three 90 s spikes to 40 jobs/s
        return 40.0 if any(s <= t < s + 90 for s in (300.0, 1200.0, 2100.0)) else 2.0

    arrivals = poisson_arrivals(rng, rate=rate, peak=40.0, horizon=horizon)
    durations = lognormal_durations(rng, len(arrivals), mean=0.4, cap=60)
    return Trace(
        "bursts",
        "2 jobs/s with 3 x 90 s spikes to 40 jobs/s, 0.4 s jobs",
        arrivals,
        durations,
        horizon,
    )


def bulk(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 2700.0
    base = poisson_arrivals(rng, rate=lambda t: 1.0, peak=1.0, horizon=horizon)
    dumps: list[float] = []
    for start in (300.0, 1200.0, 2100.0):  # 3,000 jobs enqueued within 5 s, three times
        dumps += [start + rng.uniform(0, 5) for _ in range(3000)]
    arrivals = sorted(base + dumps)
    durations = lognormal_durations(rng, len(arrivals), mean=0.4, cap=60)
    return Trace(
        "bulk", "1 job/s + 3 x 3,000 jobs dumped in 5 s, 0.4 s jobs", arrivals, durations, horizon
    )


def daily(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 7200.0  # a day compressed into 2 h: night trough, morning ramp, evening peak

    def rate(t: float) -> float:
        phase = 2 * math.pi * t / horizon
        return 1.0 + 24.0 * (1 - math.cos(phase)) / 2 + 6.0 * max(0.0, math.sin(2 * phase))

    arrivals = poisson_arrivals(rng, rate=rate, peak=32.0, horizon=horizon)
    durations = lognormal_durations(rng, len(arrivals), mean=0.4, cap=60)
    return Trace(
        "daily", "1 -> 30 jobs/s and back over 2 h, 0.4 s jobs", arrivals, durations, horizon
    )


def long_jobs(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 3600.0
    trickle = poisson_arrivals(rng, rate=lambda t: 0.005, peak=0.005, horizon=horizon)
    batches: list[float] = []
    for start in (300.0, 1500.0, 2700.0):  # nightly-report style: 150 jobs within 30 s
        batches += [start + rng.uniform(0, 30) for _ in range(150)]
    arrivals = sorted(trickle + batches)
    durations = lognormal_durations(rng, len(arrivals), mean=120.0, cap=590)
    return Trace(
        "long-jobs", "3 batches of 150 jobs, 120 s jobs (<= 590 s)", arrivals, durations, horizon
    )


def trickle(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 3600.0

    def rate(t: float) -> float:  # quiet, a busy half hour, quiet
        return 0.3 if 600 <= t < 2400 else 0.02

    arrivals = poisson_arrivals(rng, rate=rate, peak=0.3, horizon=horizon)
    durations = lognormal_durations(rng, len(arrivals), mean=90.0, cap=590)
    return Trace(
        "trickle", "0.02 -> 0.3 -> 0.02 jobs/s, 90 s jobs (<= 590 s)", arrivals, durations, horizon
    )


def sparse(seed: int) -> Trace:
    rng = random.Random(seed)
    horizon = 3600.0
    arrivals: list[float] = []
    for start in range(200, 3600, 600):  # 40 jobs every 10 min; idle in between
        arrivals += [start + rng.uniform(0, 20) for _ in range(40)]
    arrivals.sort()
    durations = lognormal_durations(rng, len(arrivals), mean=2.0, cap=60)
    return Trace(
        "sparse", "40 jobs every 10 min, 2 s jobs (scale to zero)", arrivals, durations, horizon
    )


# The traces the targets are set on, then extra ones that show where they bind.
TARGETED: dict[str, Callable[[int], Trace]] = {
    "steady": steady,
    "bursts": bursts,
    "daily": daily,
    "long-jobs": long_jobs,
}
EXTRA: dict[str, Callable[[int], Trace]] = {"bulk": bulk, "trickle": trickle, "sparse": sparse}
ALL = TARGETED | EXTRA


def compressed(
    trace: Trace, *, factor: float, seed: int, duration_scale: float = 1.0, name: str = ""
) -> Trace:
    """``trace`` ``factor`` times shorter at the same arrival rates (for runs on a real cluster).

    Each arrival is kept with probability 1/factor and its time divided by factor: thinning
    keeps a Poisson process Poisson, so rates, in-flight work and pods needed stay those of the
    original while every phase (a burst, a ramp) lasts factor times less. ``duration_scale``
    shortens the jobs too (long jobs would outlast a few-minute run).
    """
    rng = random.Random(seed)
    kept = [(a, d) for a, d in zip(trace.arrivals, trace.durations, strict=True)
            if rng.random() * factor < 1.0]  # fmt: skip
    return Trace(
        name or trace.name,
        f"{trace.description}; time / {factor:g}"
        + (f", jobs x {duration_scale:g}" if duration_scale != 1.0 else ""),
        [a / factor for a, _ in kept],
        [d * duration_scale for _, d in kept],
        trace.horizon / factor,
    )


def windowed(trace: Trace, *, start: float, end: float, name: str = "") -> Trace:
    """The arrivals of ``[start, end)`` only, moved to begin at time 0 (one episode of a trace)."""
    kept = [(a, d) for a, d in zip(trace.arrivals, trace.durations, strict=True)
            if start <= a < end]  # fmt: skip
    return Trace(
        name or trace.name,
        f"{trace.description}; {start:g}-{end:g} s only",
        [a - start for a, _ in kept],
        [d for _, d in kept],
        end - start,
    )
