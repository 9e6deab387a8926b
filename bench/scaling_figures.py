"""Figures of a real-cluster scaling run, from one lane's samples and waits (pure), and the
table and target verdicts printed and appended to RESULTS.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from bench.results_table import percentile

#: Issue 15's targets: Shoal's p95 wait against KEDA at defaults and tuned (not from zero).
P95_VS_KEDA, P95_VS_KEDA_TUNED = 1 / 3, 1 / 2
NO_WAIT_TARGET = frozenset({"from-zero"})  # pod start bounds every scaler there
SAMPLE_SECONDS = 1.0


@dataclass
class Sample:
    """One look at a pool (every SAMPLE_SECONDS)."""

    t: float  # seconds since the first arrival
    waiting: int
    active: int
    pods: int  # pods that exist (Terminating ones too: they still cost)
    ready: int
    desired: int  # the Deployment's replicas


@dataclass(frozen=True)
class Figures:
    label: str
    jobs: int
    started: int  # jobs whose wait was recorded (completed within the window)
    p50: float
    p95: float
    p99: float
    replica_seconds: float
    peak: int
    scale_events: int
    interrupted: int
    emptied_at: float | None  # nothing waiting or running after the last arrival
    after_empty: float  # replica-seconds from emptied_at to the end of the window
    zero_at: float | None  # pods back to 0 after emptied_at (None: not within the window)
    ups_after_empty: int  # scale-ups once the queue was empty
    window: float


def figures(
    *, label: str, jobs: int, last_arrival: float, samples: Sequence[Sample],
    waits: Sequence[float], interrupted: int,
) -> Figures:  # fmt: skip
    # A job that never started waited at least until the window closed: count it so.
    window = samples[-1].t + SAMPLE_SECONDS if samples else 0.0
    all_waits = list(waits) + [window - last_arrival] * max(0, jobs - len(waits))
    dts = [b.t - a.t for a, b in pairwise(samples)] + [SAMPLE_SECONDS]
    emptied = next(
        (i for i, s in enumerate(samples) if s.t >= last_arrival and s.waiting + s.active == 0),
        None,
    )
    after = emptied if emptied is not None else len(samples)
    zero = next((s.t for s in samples[after:] if s.pods == 0), None)
    return Figures(
        label=label,
        jobs=jobs,
        started=len(waits),
        p50=percentile(all_waits, 50) if all_waits else 0.0,
        p95=percentile(all_waits, 95) if all_waits else 0.0,
        p99=percentile(all_waits, 99) if all_waits else 0.0,
        replica_seconds=sum(s.pods * dt for s, dt in zip(samples, dts, strict=True)),
        peak=max((s.pods for s in samples), default=0),
        scale_events=sum(1 for a, b in pairwise(samples) if a.desired != b.desired),
        interrupted=interrupted,
        emptied_at=samples[emptied].t if emptied is not None else None,
        after_empty=sum(s.pods * dt for s, dt in zip(samples[after:], dts[after:], strict=True)),
        zero_at=zero,
        ups_after_empty=sum(1 for a, b in pairwise(samples[after:]) if b.desired > a.desired),
        window=window,
    )


HEADER = (
    "| trace | scaler | p50 wait s | p95 wait s | p99 wait s | replica-s | peak | scale events "
    "| interrupted | replica-s after empty | back to 0 |\n"
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


def row(trace: str, f: Figures) -> str:
    unfinished = f" ({f.jobs - f.started} never started)" if f.started < f.jobs else ""
    zero = (
        f"{f.zero_at - f.emptied_at:.0f} s after empty"
        if f.zero_at is not None and f.emptied_at is not None
        else f"not within {f.window:.0f} s"
    )
    return (
        f"| {trace} | {f.label}{unfinished} | {f.p50:.1f} | {f.p95:.1f} | {f.p99:.1f} "
        f"| {f.replica_seconds:,.0f} | {f.peak} | {f.scale_events} | {f.interrupted} "
        f"| {f.after_empty:,.0f}{'' if f.zero_at is not None else '+'} | {zero} |"
    )


def verdicts(trace: str, shoal: Figures, keda: Figures | None, tuned: Figures | None) -> list[str]:
    """One line per target for ``shoal`` on this trace: met, MISSED (with the figures)."""
    out = []
    if trace not in NO_WAIT_TARGET:
        for other, bound, name in ((keda, P95_VS_KEDA, "KEDA defaults"),
                                   (tuned, P95_VS_KEDA_TUNED, "KEDA tuned")):  # fmt: skip
            if other is not None:
                ok = shoal.p95 <= other.p95 * bound
                out.append(f"p95 wait {shoal.p95:.1f} s <= {bound:.2g} x {name}'s "
                           f"{other.p95:.1f} s: {_v(ok)}")  # fmt: skip
    if tuned is not None:
        ok = shoal.replica_seconds <= tuned.replica_seconds
        out.append(f"replica-s {shoal.replica_seconds:,.0f} <= KEDA tuned's "
                   f"{tuned.replica_seconds:,.0f}: {_v(ok)}")  # fmt: skip
    kedas = ", ".join(f"{f.label} {f.interrupted}" for f in (keda, tuned) if f is not None)
    out.append(f"interrupted by scale-down {shoal.interrupted} (target 0; {kedas}): "
               f"{_v(shoal.interrupted == 0)}")  # fmt: skip
    out.append(f"scale-ups after the queue was empty {shoal.ups_after_empty} (target 0): "
               f"{_v(shoal.ups_after_empty == 0)}")  # fmt: skip
    return [f"- {trace}, {shoal.label}: {line}" for line in out]


def _v(ok: bool) -> str:
    return "met" if ok else "MISSED"
