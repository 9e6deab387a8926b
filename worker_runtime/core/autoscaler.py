"""How many workers a pool needs: one pure function shared by the operator and `shoal up`.

    decision = decide(spec, observations, history, now)

Sizing (Auto mode) is Little's law per queue: jobs arriving at rate λ that take D seconds
each keep λ·D slots busy; draining a backlog B within T seconds takes B·D/T more:

    slots = λ·D / TARGET_UTILISATION + B·D / T,   at least the jobs in flight now
    replicas = ceil(slots / slots per replica)

Then, as in the HPA: scale up to the lowest recommendation of the up window (default 0 s:
at once), down to the highest of the down window, within the rate policies, clamped to
[minReplicas, maxReplicas]. Zero is special: a pool goes there only after cooldownSeconds with
nothing waiting, running or arriving, and wakes when backlog >= activationBacklog. When the
observations failed, the current size holds (Auto mode; Manual needs no observations).

The decision is a proposal: the driver may apply less (busy pods) or fail to apply it, so it
records what it did apply with ``record_scale``; rate policies count those events only.
See docs/autoscaling.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from worker_runtime.core.observations import (
    History,
    Observations,
    QueueRates,
    Recommendation,
    ScaleEvent,
    update_rates,
)
from worker_runtime.core.spec import ScalingRules, WorkerPoolSpec

TARGET_UTILISATION = 0.8  # headroom so arrivals do not queue behind fully busy workers
DEFAULT_JOB_SECONDS = 1.0  # duration assumed until the first attempts finish
MAX_POLICY_PERIOD_SECONDS = 1800  # the longest periodSeconds: older scale events never count
# n jobs running S seconds with none finishing "should" have finished n·S/D times: past this many
# the duration estimate D is wrong, not unlucky (ten slots: 2·D; one slot: 20·D).
STUCK_MISSED_FINISHES = 20.0


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    reason: str  # one line, e.g. "backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3"
    history: History  # keep it for the next call
    wanted: int  # the recommendation before stabilisation and rate policies


def decide(spec: WorkerPoolSpec, obs: Observations, history: History, now: float) -> Decision:
    """The replicas ``spec``'s pool should have at ``now`` (seconds, any monotonic origin)."""
    current = obs.current_replicas
    scaling = spec.scaling
    if scaling.mode == "Manual":
        # Before the error check: Manual needs no observations, so it works while Redis is down.
        target = spec.manual_replicas()
        if obs.error is None:
            history = _observed(history, obs, now)  # keep the rates warm for a switch to Auto
        return Decision(target, f"Manual mode: spec.replicas -> {target}", history, target)
    if obs.error is not None:
        reason = f"observation failed ({_one_line(obs.error)}); holding {current}"
        return Decision(current, reason, history, current)

    history = _observed(history, obs, now)
    rates, idle_since = history.queues, history.idle_since

    wanted, facts = _recommend(spec, obs, rates, now)
    notes: list[str] = []
    asleep = current == 0 and scaling.min_replicas == 0
    if asleep and obs.in_flight == 0 and obs.backlog < scaling.activation_backlog:
        reason = f"asleep: backlog {obs.backlog} < activation {scaling.activation_backlog} -> 0"
        return _final(spec, history, now, 0, reason, wanted)
    if (
        scaling.min_replicas == 0
        and idle_since is not None
        and now - idle_since >= scaling.cooldown_seconds
    ):
        idle = now - idle_since
        reason = f"idle {idle:.0f} s >= cooldown {scaling.cooldown_seconds} s -> 0"
        return _final(spec, history, now, 0, reason, wanted)
    if wanted < 1 and scaling.min_replicas == 0:
        wanted = 1  # idle, but not for cooldownSeconds yet: keep one worker
        notes.append("waiting out the cooldown")

    clamped = min(max(wanted, scaling.min_replicas), scaling.max_replicas)
    if clamped != wanted:
        bound = "maxReplicas" if clamped < wanted else "minReplicas"
        notes.append(f"wants {wanted}, {bound} {clamped}")
    recommendations = _remember(history.recommendations, now, clamped, scaling_window(spec))
    target = _stabilise(spec, recommendations, now, current, clamped)
    if target != clamped:
        direction = "up" if target < clamped else "down"
        window = getattr(scaling, f"scale_{direction}_stabilization_seconds")
        notes.append(f"{direction} window {window} s holds {target} (wants {clamped})")
    limited = _rate_limit(spec, history.events, now, current, target)
    if limited != target:
        notes.append(f"scale-{'up' if limited > current else 'down'} policy allows {limited}")
    limited = min(max(limited, scaling.min_replicas), scaling.max_replicas)
    reason = ", ".join([facts, *notes]) + f" -> {limited}"
    history = replace(history, recommendations=recommendations)
    return _final(spec, history, now, limited, reason, wanted, recorded=True)


def record_scale(history: History, *, at: float, before: int, after: int) -> History:
    """``history`` with a change of replicas the driver applied (rate policies count these).

    Only what was applied: a decision held back (busy pods) or a write that failed must not
    use up a ``scaleUp``/``scaleDown`` policy's allowance.
    """
    if before == after:
        return history
    events = tuple(e for e in history.events if e.at > at - MAX_POLICY_PERIOD_SECONDS)
    return replace(history, events=(*events, ScaleEvent(at, before, after)))


def _observed(history: History, obs: Observations, now: float) -> History:
    """History with one more (successful) observation: smoothed rates and the idle clock."""
    rates = tuple(update_rates(history.rates(q.queue), q, now) for q in obs.queues)
    busy = obs.backlog > 0 or obs.in_flight > 0 or any(r.arrived_since_last > 0 for r in rates)
    idle_since = None if busy else (history.idle_since if history.idle_since is not None else now)
    return replace(history, queues=rates, idle_since=idle_since)


def scaling_window(spec: WorkerPoolSpec) -> float:
    """How far back recommendations matter."""
    s = spec.scaling
    return float(max(s.scale_up_stabilization_seconds, s.scale_down_stabilization_seconds))


def _recommend(
    spec: WorkerPoolSpec, obs: Observations, rates: tuple[QueueRates, ...], now: float
) -> tuple[int, str]:
    """Replicas the load needs right now (no stabilisation), and the facts behind it."""
    scaling = spec.scaling
    per_replica = spec.per_replica_capacity()
    in_flight_floor = math.ceil(obs.in_flight / per_replica)
    if scaling.target_backlog_per_replica is not None:
        target = scaling.target_backlog_per_replica
        wanted = max(math.ceil(obs.backlog / target), in_flight_floor)
        return wanted, f"backlog {obs.backlog} / {target} per replica"
    per_queue_cap = min(spec.concurrency, spec.max_jobs_per_worker)
    drain = scaling.target_drain_seconds
    total_slots, wanted, arrival = 0.0, in_flight_floor, 0.0
    for q, r in zip(obs.queues, rates, strict=True):
        rate = r.arrival_rate or 0.0
        duration = r.mean_duration if r.mean_duration is not None else DEFAULT_JOB_SECONDS
        floor = r.duration_floor(now) if q.in_flight else 0.0
        # The running jobs missed STUCK_MISSED_FINISHES finishes: the estimate is wrong (a first
        # batch of long jobs, a workload that changed), not one slow job on a slot or two.
        wrong = floor * q.in_flight > STUCK_MISSED_FINISHES * duration
        if r.mean_duration is None or wrong:
            duration = max(duration, floor)  # they take at least as long as they have run
        # Jobs wait behind slots that are full now; the smoothed in-flight count would take
        # ~RATE_TAU_SECONDS to say so, which is when the waiting jobs suffer.
        stuck = wrong and q.backlog > 0
        # A waiting job needs one slot at most: with jobs longer than the drain target,
        # starting each of them at once is the best there is.
        # Arrivals keep rate x duration slots busy (Little's law), with headroom. Only over
        # the drain horizon, though: a 30 s burst of 5 jobs/s of 2-minute jobs is 150 jobs,
        # not 600 slots. The work running now (smoothed, or as is when stuck) is a fact and
        # needs no headroom.
        arriving = rate * min(duration, drain) / TARGET_UTILISATION
        # Behind schedule (the oldest job has waited part of the target): drain the rest faster.
        left = max(drain - q.oldest_waiting_age_seconds, drain / 4)
        running = max(r.in_flight or 0.0, float(q.in_flight) if stuck else 0.0)
        slots = max(arriving, running) + q.backlog * min(duration, left) / left
        slots = max(slots, float(q.in_flight))
        total_slots += slots
        arrival += rate
        wanted = max(wanted, _ceil(slots / per_queue_cap))
    wanted = max(wanted, _ceil(total_slots / per_replica))
    facts = f"backlog {obs.backlog}, {_rate(arrival)} jobs/s arriving, drain in {drain} s"
    if obs.in_flight and in_flight_floor >= wanted:
        facts += f", {obs.in_flight} in flight"
    return wanted, facts


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)  # 3.0000000001 slots is 3, not 4


def _remember(
    recs: tuple[Recommendation, ...], now: float, replicas: int, window: float
) -> tuple[Recommendation, ...]:
    """Append as a change point; drop points that ended before the window began."""
    if not recs or recs[-1].replicas != replicas:
        recs = (*recs, Recommendation(now, replicas))
    start = now - window
    # keep the last point at or before ``start``: its value still holds at the window's edge
    first = max((i for i, r in enumerate(recs) if r.at <= start), default=0)
    return recs[first:]


def _window_values(recs: tuple[Recommendation, ...], now: float, window: float) -> list[int]:
    start = now - window
    values = [r.replicas for r in recs if r.at > start]
    earlier = [r.replicas for r in recs if r.at <= start]
    return values + earlier[-1:]


def _stabilise(
    spec: WorkerPoolSpec, recs: tuple[Recommendation, ...], now: float, current: int, wanted: int
) -> int:
    s = spec.scaling
    up = min(_window_values(recs, now, s.scale_up_stabilization_seconds), default=wanted)
    down = max(_window_values(recs, now, s.scale_down_stabilization_seconds), default=wanted)
    if current < up:
        return up
    if current > down:
        return down
    return current


def _rate_limit(
    spec: WorkerPoolSpec, events: tuple[ScaleEvent, ...], now: float, current: int, target: int
) -> int:
    """HPA-style policies: change by at most value (Pods or Percent) per periodSeconds."""
    if target == current:
        return target
    rules: ScalingRules = spec.scaling.scale_up if target > current else spec.scaling.scale_down
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return target
    limits = []
    for policy in rules.policies:
        # replicas at the start of the period: undo the changes made within it
        changed = sum(e.after - e.before for e in events if e.at > now - policy.period_seconds)
        start = current - changed
        if policy.type == "Pods":
            limits.append(start + policy.value if target > current else start - policy.value)
        elif target > current:
            base = max(start, 1)  # a percentage of zero would never wake a pool
            limits.append(math.ceil(base * (1 + policy.value / 100)))
        else:
            limits.append(math.ceil(start * (1 - policy.value / 100)))
    pick = max if (rules.select_policy == "Max") == (target > current) else min
    limit = pick(limits)
    return (
        min(target, max(limit, current)) if target > current else max(target, min(limit, current))
    )


def _final(
    spec: WorkerPoolSpec,
    history: History,
    now: float,
    replicas: int,
    reason: str,
    wanted: int,
    *,
    recorded: bool = False,
) -> Decision:
    events = tuple(e for e in history.events if e.at > now - MAX_POLICY_PERIOD_SECONDS)
    recs = history.recommendations
    if not recorded:
        recs = _remember(recs, now, replicas, scaling_window(spec))
    return Decision(replicas, reason, replace(history, events=events, recommendations=recs), wanted)


def _rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}".removesuffix(".0")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
