"""What every scenario shares: the two Redis servers, worker processes, the table row, and
waiting for a queue to drain (polling with a deadline; a fault may make it never drain)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bench.fault_suite.ledger import Ledger, percentile
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.processes import start_worker
from worker_runtime import Queue
from worker_runtime.redis_io.connection import CONNECTION_ERRORS

APP = "bench.fault_suite.app:app"
#: Production defaults, so the figures are what a user gets (not the tests' short leases).
WORKER_ENV = {"WORKER_LEASE_MS": "3000", "LOG_LEVEL": "warning", "METRICS_ENABLED": "false"}


@dataclass
class Row:
    """One line of the table; ``checks`` maps each guarantee the scenario proves to whether
    it held in this run."""

    scenario: str
    jobs: int
    faults: str
    lost: int | None = None
    ran_twice: int | None = None
    dead: int | None = None
    stalls: int | None = None
    reclaim_ms: list[int] = field(default_factory=list)
    drain_s: float | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [name for name, held in self.checks.items() if not held]

    def cells(self) -> list[str]:
        def num(value: float | None, fmt: str = "{:,}") -> str:
            return "—" if value is None else fmt.format(value)

        p50, p99 = percentile(self.reclaim_ms, 50), percentile(self.reclaim_ms, 99)
        verdict = "PASS" if not self.failures else "FAIL: " + "; ".join(self.failures)
        return [
            self.scenario, f"{self.jobs:,}", self.faults, num(self.lost), num(self.ran_twice),
            num(self.dead), num(self.stalls),
            num(p50 / 1000 if p50 is not None else None, "{:.2f}"),
            num(p99 / 1000 if p99 is not None else None, "{:.2f}"),
            num(self.drain_s, "{:.1f}"), verdict,
        ]  # fmt: skip


HEADER = [
    "scenario", "jobs", "faults injected", "lost", "ran twice", "dead", "stalls counted",
    "reclaim p50 s", "reclaim p99 s", "drain s", "guarantees",
]  # fmt: skip


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


class Stage:
    """The Redis under test (faults go here), the ledger Redis (never faulted), and the
    `shoal worker` processes of one scenario."""

    def __init__(self, redis: RedisServer, ledger: RedisServer) -> None:
        self.redis = redis
        self.ledger_server = ledger
        self.ledger = aioredis.Redis.from_url(ledger.url, decode_responses=True)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, queue: str, **env: str) -> subprocess.Popen[bytes]:
        proc = start_worker(
            self.redis.url, "--queue", queue, app=APP,
            **{**WORKER_ENV, "FAULT_LEDGER_URL": self.ledger_server.url, **env},
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.workers if p.poll() is None]

    async def read_ledger(self) -> Ledger:
        return await Ledger.read(self.ledger)

    def stop_workers(self) -> None:
        for proc in self.alive():
            proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def stage(**redis_options: Any) -> AsyncIterator[Stage]:
    with RedisServer(**redis_options) as redis, RedisServer() as ledger:
        s = Stage(redis, ledger)
        try:
            yield s
        finally:
            s.stop_workers()
            await s.ledger.aclose()


async def poll(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.1
) -> bool:
    """True once ``check`` holds, False at the deadline; Redis being down counts as not yet."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if await check():
                return True
        except CONNECTION_ERRORS:
            pass
        await asyncio.sleep(interval)
    return False


async def settled(queue: Queue, ledger: Callable[[], Awaitable[Ledger]], ids: set[str]) -> bool:
    """Nothing waiting, delayed or running, and every job finished or dead-lettered."""
    counts = await queue.counts()
    if counts["waiting"] or counts["active"] or counts["delayed"]:
        return False
    dead = set(await queue.redis.zrange(queue.keys.dead, 0, -1))
    return not (await ledger()).lost(ids, dead)


async def outcome(queue: Queue, stage_: Stage, row: Row, ids: set[str]) -> tuple[Ledger, set[str]]:
    """Fill the row's counted columns; returns the ledger and the dead-lettered ids."""
    ledger = await stage_.read_ledger()
    dead = set(await queue.redis.zrange(queue.keys.dead, 0, -1))
    stats = await queue.redis.hgetall(queue.keys.stats)
    row.lost = len(ledger.lost(ids, dead))
    row.ran_twice = ledger.ran_twice()
    row.dead = len(dead & ids)
    row.stalls = int(stats.get("stalled", 0))
    return ledger, dead
