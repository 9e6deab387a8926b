"""Counting from the jobs' own records (app.py's ledger): lost, ran twice, reclaim latency."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from bench.fault_suite.app import DONE, START


@dataclass(frozen=True)
class Run:
    job_id: str
    pid: int
    ms: int


def _parse(lines: list[str]) -> list[Run]:
    runs = []
    for line in lines:
        job_id, pid, ms = line.split(" ")
        runs.append(Run(job_id, int(pid), int(ms)))
    return runs


@dataclass
class Ledger:
    starts: list[Run] = field(default_factory=list)
    dones: list[Run] = field(default_factory=list)

    @classmethod
    async def read(cls, client: aioredis.Redis) -> Ledger:
        starts = await client.lrange(START, 0, -1)
        dones = await client.lrange(DONE, 0, -1)
        return cls(_parse(starts), _parse(dones))

    @property
    def finished(self) -> Counter[str]:
        """Job id -> times its processor ran to the end."""
        return Counter(run.job_id for run in self.dones)

    @property
    def started(self) -> Counter[str]:
        return Counter(run.job_id for run in self.starts)

    def ran_twice(self) -> int:
        return sum(1 for n in self.finished.values() if n > 1)

    def lost(self, accepted: set[str], dead: set[str]) -> set[str]:
        """Accepted jobs that never ran to the end and are not in the dead-letter store."""
        return accepted - set(self.finished) - dead

    def reclaim_latencies_ms(self, kills: list[tuple[int, int]]) -> list[int]:
        """For each job running on a worker when it was killed (``(pid, epoch ms)``), the time
        from the kill to the job's next start on another worker (a job that was finished and
        acknowledged before the kill never starts again, so it does not count)."""
        by_job: dict[str, list[Run]] = defaultdict(list)
        by_pid: dict[int, list[Run]] = defaultdict(list)
        for run in self.starts:
            by_job[run.job_id].append(run)
            by_pid[run.pid].append(run)
        latencies = []
        previous: dict[int, int] = {}  # pid -> its last kill: pids are reused (pid_max 32768)
        for pid, killed_ms in sorted(kills, key=lambda kill: kill[1]):
            since = previous.get(pid, -1)
            previous[pid] = killed_ms
            for job_id in {r.job_id for r in by_pid[pid] if since < r.ms <= killed_ms}:
                later = [r.ms for r in by_job[job_id] if r.ms > killed_ms and r.pid != pid]
                if later:
                    latencies.append(min(later) - killed_ms)
        return latencies


def percentile(values: list[int] | list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])
