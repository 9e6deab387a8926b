"""The benchmark's figures and how they are summarised: medians, percentiles, ratios, targets,
and the side-by-side table printed and appended to RESULTS.md (pure, no I/O but the append)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Issue 2's targets, all against BullMQ.
TARGET_DRAIN_RATIO = 1.5
TARGET_BULK_RATIO = 1.0
TARGET_PICKUP_P99_MS = 2.0


@dataclass
class Figures:
    """What was measured for one system (empty lists / None: not measured or unsupported)."""

    key: str
    label: str
    drain_jobs_per_s: list[float] = field(default_factory=list)
    peak_rss_kib: list[int] = field(default_factory=list)
    single_jobs_per_s: float | None = None
    bulk_jobs_per_s: float | None = None
    bulk_unsupported: bool = False
    pickup_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def drain(self) -> float | None:
        return statistics.median(self.drain_jobs_per_s) if self.drain_jobs_per_s else None

    @property
    def rss_mib(self) -> float | None:
        return statistics.median(self.peak_rss_kib) / 1024 if self.peak_rss_kib else None

    @property
    def pickup_p50(self) -> float | None:
        return percentile(self.pickup_ms, 50) if self.pickup_ms else None

    @property
    def pickup_p99(self) -> float | None:
        return percentile(self.pickup_ms, 99) if self.pickup_ms else None


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Metric:
    title: str
    value: Callable[[Figures], float | None]
    fmt: str  # format spec for the value
    higher_is_better: bool
    unsupported: Callable[[Figures], bool] = lambda _: False


METRICS = (
    Metric("drain, jobs/s (median)", lambda f: f.drain, ",.0f", True),
    Metric("enqueue one-by-one, jobs/s", lambda f: f.single_jobs_per_s, ",.0f", True),
    Metric(
        "enqueue bulk, jobs/s", lambda f: f.bulk_jobs_per_s, ",.0f", True,
        unsupported=lambda f: f.bulk_unsupported,
    ),
    Metric("idle pickup p50, ms (lower is better)", lambda f: f.pickup_p50, ".2f", False),
    Metric("idle pickup p99, ms (lower is better)", lambda f: f.pickup_p99, ".2f", False),
    Metric("worker peak RSS, MiB (lower is better)", lambda f: f.rss_mib, ".1f", False),
)  # fmt: skip


def _cell(metric: Metric, figures: Figures) -> str:
    if metric.unsupported(figures):
        return "n/a"
    value = metric.value(figures)
    return "—" if value is None else format(value, metric.fmt)


def times(r: float) -> str:
    """A ratio for the table: 2 decimals, fewer digits only where they carry no news."""
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×" if r >= 0.01 else f"{r:.2g}×"


def ratio(shoal: float | None, peer: float | None) -> float | None:
    if shoal is None or peer is None or peer == 0:
        return None
    return shoal / peer


def render_table(shoal: Figures, others: Sequence[Figures], peers: Sequence[Figures]) -> str:
    """Markdown table: Shoal, any other Shoal variants, the peers, then Shoal/peer ratios."""
    columns = [shoal, *others, *peers]
    header = [
        "metric",
        *(f.label for f in columns),
        *(f"Shoal/{p.label.split()[0]}" for p in peers),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in METRICS:
        cells = [metric.title, *(_cell(metric, f) for f in columns)]
        for peer in peers:
            r = ratio(metric.value(shoal), metric.value(peer))
            cells.append("n/a" if metric.unsupported(peer) else "—" if r is None else times(r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def drain_runs(columns: Sequence[Figures]) -> str:
    parts = []
    for f in columns:
        runs = ", ".join(f"{v:,.0f}" for v in f.drain_jobs_per_s) or "—"
        parts.append(f"{f.label}: {runs}")
    return "drain runs, jobs/s: " + "; ".join(parts)


def _check(title: str, shown: str | None, ok: bool | None) -> str:
    if shown is None or ok is None:
        return f"- {title}: not measured"
    return f"- {title}: {shown} {'PASS' if ok else 'FAIL'}"


def target_checks(shoal: Figures, bullmq: Figures | None) -> list[str]:
    """Issue 2's targets, each with the figure and PASS/FAIL (or 'not measured')."""
    peer = bullmq or Figures(key="bullmq", label="BullMQ")
    drain = ratio(shoal.drain, peer.drain)
    bulk = ratio(shoal.bulk_jobs_per_s, peer.bulk_jobs_per_s)
    p99 = shoal.pickup_p99
    rss, peer_rss = shoal.rss_mib, peer.rss_mib
    return [
        _check(
            f"throughput ≥ {TARGET_DRAIN_RATIO}× BullMQ",
            None if drain is None else f"{drain:.2f}×",
            None if drain is None else drain >= TARGET_DRAIN_RATIO,
        ),
        _check(
            "bulk enqueue ≥ BullMQ addBulk",
            None if bulk is None else f"{bulk:.2f}×",
            None if bulk is None else bulk >= TARGET_BULK_RATIO,
        ),
        _check(
            f"idle pickup p99 ≤ {TARGET_PICKUP_P99_MS:g} ms",
            None if p99 is None else f"{p99:.2f} ms",
            None if p99 is None else p99 <= TARGET_PICKUP_P99_MS,
        ),
        _check(
            "worker peak RSS ≤ BullMQ's",
            None if rss is None or peer_rss is None else f"{rss:.1f} vs {peer_rss:.1f} MiB",
            None if rss is None or peer_rss is None else rss <= peer_rss,
        ),
    ]


def append_results(path: Path, text: str) -> None:
    """Append a run to RESULTS.md (append only: other benchmarks write there too)."""
    new = not path.exists()
    with path.open("a", encoding="utf-8") as out:
        if new:
            out.write("# Benchmark results\n\nAppend-only log of benchmark runs, newest last.\n")
        out.write("\n" + text.rstrip() + "\n")
