"""Facts about the machine a benchmark ran on: versions, cores, and how busy everything else was.

The machine is shared (builds run beside the bench on 2 cores), so a run records the CPU time
that processes other than the benchmark's own used while it ran: figures from a busy machine
are only comparable to each other, within the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy since boot (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class CpuAccount:
    """Started before the run, read after every child (Redis included) has been reaped."""

    started_wall: float
    started_busy: float
    started_own: float
    load_before: float

    @classmethod
    def start(cls) -> CpuAccount:
        return cls(
            started_wall=time.monotonic(),
            started_busy=_busy_seconds(),
            started_own=_own_cpu_seconds(),
            load_before=os.getloadavg()[0],
        )

    def summary(self) -> str:
        wall = time.monotonic() - self.started_wall
        busy = _busy_seconds() - self.started_busy
        own = _own_cpu_seconds() - self.started_own
        others = max(0.0, busy - own) / wall if wall > 0 else 0.0
        return (
            f"{os.cpu_count()} cores; other processes used {others:.2f} cores on average over "
            f"the {wall:.0f} s run; load average (1 min) {self.load_before:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after"
        )


def _output(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip() or "?"


def git_head(root: Path) -> str:
    return _output(["git", "rev-parse", "--short", "HEAD"], cwd=root)


def versions(redis_server: str) -> str:
    redis = _output([redis_server, "--version"]).split()
    redis_version = next((w.split("=")[1] for w in redis if w.startswith("v=")), "?")
    return (
        f"Redis {redis_version}, Python {platform.python_version()}, "
        f"Node {_output(['node', '--version']).lstrip('v')}, {platform.machine()}"
    )


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine (here also the test node) has been busy since boot."""
    return _busy_seconds()
