"""Recent queue samples in memory: rates over the last minute and sparklines over the hour.

Pure: the sampler feeds `QueueSnapshot`s in (Redis' clock), pages read series out.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from worker_runtime.producing.queue_snapshot import QueueSnapshot

RATE_WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class Rates:
    arrival: float  # jobs enqueued per second
    finish: float  # attempts finished (completed, failed, retried) per second


class QueueHistory:
    """A bounded window of one queue's snapshots, oldest first."""

    def __init__(self, *, window_ms: int) -> None:
        self.window_ms = window_ms
        self.samples: deque[QueueSnapshot] = deque()

    def add(self, snap: QueueSnapshot) -> None:
        if self.samples and snap.at_ms <= self.samples[-1].at_ms:
            return  # same instant (or a clock step back): keep the series monotonic
        self.samples.append(snap)
        while self.samples and self.samples[0].at_ms < snap.at_ms - self.window_ms:
            self.samples.popleft()

    @property
    def latest(self) -> QueueSnapshot | None:
        return self.samples[-1] if self.samples else None

    def rates(self, *, window_ms: int = RATE_WINDOW_MS) -> Rates:
        if len(self.samples) < 2:
            return Rates(0.0, 0.0)
        last = self.samples[-1]
        first = next(s for s in self.samples if s.at_ms >= last.at_ms - window_ms)
        if first is last:
            first = self.samples[-2]
        return rates_between(first, last)

    def series(self, *, buckets: int = 60) -> tuple[list[float], list[float], list[int]]:
        """Arrival rate, finish rate and backlog per bucket across the window (for sparklines)."""
        return bucket_series(list(self.samples), buckets=buckets, window_ms=self.window_ms)


def rates_between(first: QueueSnapshot, last: QueueSnapshot) -> Rates:
    seconds = (last.at_ms - first.at_ms) / 1000
    if seconds <= 0:
        return Rates(0.0, 0.0)
    # Counters restart at 0 if the queue's keys were deleted: never show a negative rate.
    arrival = max(0, last.enqueued - first.enqueued) / seconds
    finish = max(0, last.attempts_finished - first.attempts_finished) / seconds
    return Rates(arrival, finish)


def bucket_series(
    samples: Sequence[QueueSnapshot], *, buckets: int, window_ms: int
) -> tuple[list[float], list[float], list[int]]:
    """The rates between consecutive samples, averaged into ``buckets`` equal time slices ending
    at the last sample, and the backlog at each slice's end (an empty slice repeats the one
    before). Slices before the first sample are left out: the lists may be shorter than
    ``buckets``, and end at the last sample."""
    if not samples:
        return [], [], []
    end = samples[-1].at_ms
    width = window_ms / buckets

    def slot(at_ms: int) -> int:
        return min(buckets - 1, max(0, buckets - 1 - int((end - at_ms) / width)))

    first = slot(samples[0].at_ms)
    size = buckets - first
    arrivals, finishes, weight = [0.0] * size, [0.0] * size, [0.0] * size
    backlog: list[int | None] = [None] * size
    for prev, cur in itertools.pairwise(samples):
        index = slot(cur.at_ms) - first
        span = (cur.at_ms - prev.at_ms) / 1000
        rates = rates_between(prev, cur)
        arrivals[index] += rates.arrival * span
        finishes[index] += rates.finish * span
        weight[index] += span
    for snap in samples:
        backlog[slot(snap.at_ms) - first] = snap.backlog
    filled: list[int] = []
    for i in range(size):
        if weight[i]:
            arrivals[i] /= weight[i]
            finishes[i] /= weight[i]
        value = backlog[i]
        filled.append(value if value is not None else filled[-1])
    return arrivals, finishes, filled


def sparkline_points(
    values: Sequence[float],
    *,
    slots: int | None = None,
    top: float | None = None,
    width: int = 120,
    height: int = 24,
) -> str:
    """SVG polyline points for ``values`` scaled into width x height: 0 at the bottom, ``top``
    (by default the largest value) at the top; the last value at the right edge, each one
    ``width / (slots - 1)`` apart (``slots``: by default the number of values)."""
    if not values:
        return ""
    top = (max(values) if top is None else top) or 1.0
    step = width / max(1, (slots or len(values)) - 1)
    right = width - (len(values) - 1) * step
    return " ".join(
        f"{right + i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}"
        for i, v in enumerate(values)
    )
