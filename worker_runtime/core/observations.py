"""What the autoscaler sees of a pool (observations) and remembers between ticks (history).

Both are immutable. The caller reads Redis (``worker_runtime.producing.queue_snapshot`` gives
everything a ``QueueObservation`` needs in one round trip), calls ``autoscaler.decide`` and
keeps the ``History`` it returns for the next tick. History is plain data: ``to_json``/``from_json``
round-trip it, so a driver may persist it.

Rates are derived here from monotonic counters, so callers stay stateless; they are smoothed
with a time-based EWMA (weight ``1 - exp(-dt / tau)``) because ticks need not be regular.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import TypeAdapter

# Rates are smoothed over about RATE_EVENTS events, within [RATE_TAU, RATE_TAU_MAX] seconds:
# 30 jobs/s settles in 15 s, while 0.3 jobs/s (a job every 3 s) is not judged on 5 arrivals.
RATE_TAU_SECONDS = 15.0
RATE_TAU_MAX_SECONDS = 300.0
RATE_EVENTS = 20.0
DURATION_TAU_SECONDS = 60.0  # job duration moves slowly; one odd batch should not resize


@dataclass(frozen=True, slots=True)
class QueueObservation:
    """One queue at one instant. ``*_total`` are monotonic counters (a drop = counter reset).

    From a ``QueueSnapshot``: waiting, due_delayed, in_flight=active, arrived_total=enqueued,
    finished_total=completed+failed, busy_seconds_total=busy_ms/1000.
    """

    queue: str
    waiting: int = 0
    due_delayed: int = 0  # delayed jobs already due: as ready as waiting ones
    in_flight: int = 0
    arrived_total: int = 0
    finished_total: int = 0
    busy_seconds_total: float | None = None  # summed run time of finished attempts, if known
    oldest_waiting_age_seconds: float = 0.0

    @property
    def backlog(self) -> int:
        return self.waiting + self.due_delayed


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """One worker's heartbeat: jobs it is running."""

    name: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything read for one pool on one tick. ``error`` set means the read failed."""

    current_replicas: int  # what the pool is set to now (the Deployment's spec.replicas)
    queues: tuple[QueueObservation, ...] = ()
    workers: tuple[WorkerLoad, ...] = ()
    error: str | None = None

    @classmethod
    def failed(cls, *, current_replicas: int, error: str) -> Observations:
        return cls(current_replicas=current_replicas, error=error or "unknown error")

    @property
    def backlog(self) -> int:
        return sum(q.backlog for q in self.queues)

    @property
    def in_flight(self) -> int:
        # Heartbeats lag but also count jobs whose lease Redis has not seen yet: take the larger.
        return max(sum(q.in_flight for q in self.queues), sum(w.in_flight for w in self.workers))

    @property
    def oldest_waiting_age_seconds(self) -> float:
        return max((q.oldest_waiting_age_seconds for q in self.queues), default=0.0)


@dataclass(frozen=True, slots=True)
class QueueRates:
    """Smoothed rates of one queue, and the counters they were last updated from."""

    queue: str
    at: float
    arrived_total: int
    finished_total: int
    busy_seconds_total: float | None = None
    arrival_rate: float | None = None  # jobs/s becoming ready
    finish_rate: float | None = None  # attempts/s finishing
    in_flight: float | None = None  # smoothed, for Little's law when run time is not counted
    mean_duration: float | None = None  # seconds per attempt
    arrived_since_last: int = 0  # raw, for "was anything enqueued since the last tick"
    progress_at: float | None = None  # last time an attempt finished or nothing was running

    def duration_floor(self, now: float) -> float:
        """Jobs running with none finishing for S seconds take at least about S seconds."""
        return 0.0 if self.progress_at is None else now - self.progress_at


@dataclass(frozen=True, slots=True)
class Recommendation:
    """From ``at`` on, the autoscaler recommended ``replicas`` (kept as change points)."""

    at: float
    replicas: int


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    at: float
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class History:
    """What decide() remembers between ticks; start with ``History()``."""

    queues: tuple[QueueRates, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()
    idle_since: float | None = None  # nothing waiting, running or arriving since then

    def rates(self, queue: str) -> QueueRates | None:
        return next((r for r in self.queues if r.queue == queue), None)

    def to_json(self) -> str:
        return _HISTORY.dump_json(self).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> History:
        return _HISTORY.validate_json(text)


_HISTORY = TypeAdapter(History)


def _ewma(previous: float | None, sample: float, dt: float, tau: float) -> float:
    if previous is None:
        return sample
    weight = 1.0 - math.exp(-dt / tau)
    return previous + weight * (sample - previous)


def _tau(rate: float | None) -> float:
    if not rate:
        return RATE_TAU_SECONDS
    return min(max(RATE_TAU_SECONDS, RATE_EVENTS / rate), RATE_TAU_MAX_SECONDS)


def update_rates(previous: QueueRates | None, obs: QueueObservation, now: float) -> QueueRates:
    """Fold one observation into a queue's smoothed rates."""
    # Each branch builds its result once (no dataclasses.replace): an operator folds a
    # thousand of these per tick.
    if previous is None:
        return QueueRates(obs.queue, now, obs.arrived_total, obs.finished_total,
                          obs.busy_seconds_total, in_flight=float(obs.in_flight),
                          progress_at=now)  # fmt: skip
    dt = now - previous.at
    arrived = obs.arrived_total - previous.arrived_total
    finished = obs.finished_total - previous.finished_total
    if arrived < 0 or finished < 0:  # counters reset (Redis flushed): new baseline, keep rates
        return QueueRates(
            obs.queue, now, obs.arrived_total, obs.finished_total, obs.busy_seconds_total,
            arrival_rate=previous.arrival_rate,
            finish_rate=previous.finish_rate,
            in_flight=previous.in_flight,
            mean_duration=previous.mean_duration,
            progress_at=now,
        )  # fmt: skip
    if dt <= 0:  # same instant twice: nothing to learn
        return previous
    arrival_rate = _ewma(previous.arrival_rate, arrived / dt, dt, _tau(previous.arrival_rate))
    finish_rate = _ewma(previous.finish_rate, finished / dt, dt, _tau(previous.finish_rate))
    in_flight = _ewma(previous.in_flight, float(obs.in_flight), dt, RATE_TAU_SECONDS)
    sample: float | None = None
    if (
        finished > 0
        and obs.busy_seconds_total is not None
        and previous.busy_seconds_total is not None
    ):
        busy = obs.busy_seconds_total - previous.busy_seconds_total
        sample = busy / finished if busy >= 0 else None
    elif obs.busy_seconds_total is None and finish_rate > 1e-6 and in_flight > 0:
        sample = in_flight / finish_rate  # Little's law on the workers: L = throughput x D
    duration = previous.mean_duration
    if sample is not None:
        duration = _ewma(duration, sample, dt, DURATION_TAU_SECONDS)
    return QueueRates(
        obs.queue, now, obs.arrived_total, obs.finished_total, obs.busy_seconds_total,
        arrival_rate=arrival_rate,
        finish_rate=finish_rate,
        in_flight=in_flight,
        mean_duration=duration,
        arrived_since_last=arrived,
        progress_at=now if finished > 0 or obs.in_flight == 0 else previous.progress_at,
    )  # fmt: skip
