"""Named moments of an end-to-end run, and the report of its figures against the targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """``end - start`` should be at most ``seconds`` (the product target); the test asserts only
    ``bound`` (generous: an end-to-end run is not a benchmark)."""

    label: str
    start: str
    end: str
    seconds: float
    bound: float


class Timeline:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self.origin = clock()
        self._wall_origin = wall()  # maps wall-clock moments (Redis, the workers) onto clock
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> float:
        """Record ``name`` now (the first time only); returns seconds since the origin."""
        self.marks.setdefault(name, self._clock())
        return self.marks[name] - self.origin

    def mark_at(self, name: str, wall: float) -> float:
        """Record ``name`` at wall-clock time ``wall`` (e.g. a job's start in Redis' clock, the
        same machine's); the first time only. Returns seconds since the origin."""
        self.marks.setdefault(name, self.origin + wall - self._wall_origin)
        return self.marks[name] - self.origin

    def between(self, start: str, end: str) -> float:
        return self.marks[end] - self.marks[start]

    def lines(self, targets: tuple[Target, ...] = ()) -> list[str]:
        ordered = sorted(self.marks.items(), key=lambda item: item[1])
        out = [f"{at - self.origin:8.1f} s  {name}" for name, at in ordered]
        for t in targets:
            if t.start in self.marks and t.end in self.marks:
                took = self.between(t.start, t.end)
                verdict = "met" if took <= t.seconds else "MISSED"
                out.append(f"{t.label}: {took:.1f} s (target <= {t.seconds:g} s: {verdict})")
            else:
                out.append(f"{t.label}: not reached")
        return out

    def over_bound(self, targets: tuple[Target, ...]) -> list[str]:
        """Targets whose figure exceeds the asserted bound (or never happened)."""
        return [
            t.label
            for t in targets
            if t.start not in self.marks
            or t.end not in self.marks
            or self.between(t.start, t.end) > t.bound
        ]
