"""The process pool's last resorts, with real processes: a hung drain is killed, and a
worker command that cannot start is retried with backoff instead of spinning."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.harness.async_waiting import eventually
from worker_runtime.core.spec import load_workerpool
from worker_runtime.supervisor.process_pool import PoolSettings, ProcessPool
from worker_runtime.supervisor.restarts import RestartPolicy

pytestmark = pytest.mark.integration

POOL = load_workerpool(
    {"apiVersion": "shoal.dev/v1alpha1", "kind": "WorkerPool", "metadata": {"name": "p"},
     "spec": {"image": "x", "app": "app:worker", "queues": ["q"]}}
)  # fmt: skip


def deaf_worker(tmp_path: Path) -> str:
    """A "python" that ignores SIGTERM: stands in for a worker stuck in a job past its drain.
    It touches `deaf` once the trap is set, so the test never signals it before that."""
    script = tmp_path / "deaf-python"
    ready = tmp_path / "deaf"
    script.write_text(f"#!/bin/sh\ntrap '' TERM\ntouch {ready}\nwhile :; do sleep 0.05; done\n")
    script.chmod(0o755)
    return str(script)


def pool_of(tmp_path: Path, settings: PoolSettings) -> ProcessPool:
    return ProcessPool(
        POOL, redis_url="redis://127.0.0.1:1/0", log_dir=tmp_path, local_env={},
        settings=settings, clock_start=time.monotonic(),
    )  # fmt: skip


async def test_a_drain_past_its_time_is_killed(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, PoolSettings(python=deaf_worker(tmp_path), drain_seconds=0.5))
    try:
        await pool.scale_to(1, time.monotonic())

        async def deaf() -> bool:
            return (tmp_path / "deaf").exists()

        await eventually(deaf, timeout=10, description="the worker ignoring SIGTERM")
        await pool.scale_to(0, time.monotonic())
        assert pool.process_count == 1  # SIGTERM ignored: still draining

        async def gone() -> bool:
            await pool.check(time.monotonic())
            return pool.process_count == 0 and not pool.draining

        await eventually(gone, timeout=10, description="the deaf worker killed")
        kinds = [e.kind for e in pool.take_events()]
        assert kinds == ["started", "stopping", "killed", "stopped"]
        assert pool.kills == 1
    finally:
        pool.kill_all(time.monotonic(), "test over")
        await pool.close()


async def test_a_command_that_cannot_start_backs_off(tmp_path: Path) -> None:
    restart = RestartPolicy(initial_seconds=0.2, max_seconds=10)
    pool = pool_of(tmp_path, PoolSettings(python=str(tmp_path / "no-such-python"), restart=restart))
    try:
        await pool.scale_to(1, time.monotonic())

        async def three_failures() -> bool:
            await pool.check(time.monotonic())
            return pool.crashes >= 3

        await eventually(three_failures, timeout=10, description="three failed starts")
        crashes = [e for e in pool.take_events() if e.kind == "crashed"]
        assert "cannot start" in crashes[0].message
        gaps = [b.t - a.t for a, b in itertools.pairwise(crashes)]
        assert gaps[0] >= 0.2
        assert gaps[1] >= 0.4  # doubled: no spinning
        (row,) = pool.rows(time.monotonic())
        assert row.state == "backoff"
    finally:
        await pool.close()
