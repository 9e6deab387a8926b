"""The time-series plot of one trace: backlog and pods of every scaler (PNG, matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt

from bench.scaling_rig import Lane
from bench.traces import Trace

COLOURS = {"shoal": "tab:blue", "shoal-tuned": "tab:cyan", "keda": "tab:red",
           "keda-tuned": "tab:orange"}  # fmt: skip


def plot(trace: Trace, lanes: Sequence[Lane], path: Path, *, title: str) -> Path:
    fig, (backlog, pods) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), dpi=100)
    arrivals = _per_second(trace.arrivals, int(max(trace.horizon, 1)))
    backlog.step(range(len(arrivals)), arrivals, where="post", color="grey", alpha=0.5,
                 label="arrivals / s")  # fmt: skip
    for lane in lanes:
        t = [s.t for s in lane.samples]
        colour = COLOURS.get(lane.scaler.key)
        backlog.plot(t, [s.waiting for s in lane.samples], color=colour, label=lane.scaler.label)
        pods.step(t, [s.pods for s in lane.samples], where="post", color=colour,
                  label=lane.scaler.label)  # fmt: skip
    backlog.set_ylabel("jobs waiting (and arrivals/s)")
    pods.set_ylabel("worker pods")
    pods.set_xlabel("seconds since the first arrival")
    for ax in (backlog, pods):
        ax.axvline(trace.horizon, color="black", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    backlog.legend(fontsize=8, loc="upper right")
    backlog.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _per_second(arrivals: Sequence[float], seconds: int) -> list[int]:
    counts = [0] * (seconds + 1)
    for a in arrivals:
        counts[min(seconds, int(a))] += 1
    return counts
