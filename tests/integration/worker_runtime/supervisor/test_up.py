"""`shoal up` on a real Redis with real worker processes: scale from zero and back, restarts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from tests.harness.waiting import wait_until
from tests.integration.worker_runtime.supervisor.up_process import UpProcess, manifest
from worker_runtime.core.keys import QueueKeys
from worker_runtime.producing.sync import SyncQueue

pytestmark = pytest.mark.integration

JOBS = 5000


def test_scales_from_zero_to_n_and_back_every_job_once(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with UpProcess(manifest("burst"), redis_url=redis_url, tmp=tmp_path) as up:
        first = up.wait_for(lambda t: True, 15, "the first tick")
        assert (first["desiredReplicas"], first["replicas"], first["workers"]) == (0, 0, [])
        with SyncQueue("uprec", redis_url=redis_url) as q:
            ids = {j.id for j in q.enqueue_many([{"ms": 20}] * JOBS)}
        up.wait_for(lambda t: t["replicas"] >= 2, 15, "the pool to wake and grow")

        def all_completed() -> bool:
            return SyncQueue("uprec", redis_url=redis_url).counts()["completed"] == JOBS

        wait_until(all_completed, 40, description=f"{JOBS} jobs completed")
        up.wait_for(
            lambda t: t["t"] > 0 and t["desiredReplicas"] == t["replicas"] == t["draining"] == 0
            and t["backlog"] == 0 and bool(up.events("stopped")),
            30,
            "the pool back at zero",
        )  # fmt: skip
        peak = max(t["replicas"] for t in up.ticks)
        assert up.stop() == 0
    counts = SyncQueue("uprec", redis_url=redis_url).counts()
    assert counts == {"waiting": 0, "active": 0, "delayed": 0, "completed": JOBS, "failed": 0,
                      "dead": 0}  # fmt: skip
    started, finished = r.hgetall("test:started"), r.hgetall("test:exec")
    assert set(started) == set(finished) == ids  # every job ran, and every run finished
    assert set(started.values()) == set(finished.values()) == {"1"}  # exactly once
    assert int(r.hget(QueueKeys("uprec").stats, "stalled") or 0) == 0  # no worker lost mid-job
    assert 2 <= peak <= 4
    stopped = up.events("stopped")
    assert len(stopped) == len(up.events("started")) == peak  # every worker drained and left
    assert all("exit code 0" in e["message"] for e in stopped), stopped
    assert up.events("killed") == []
    assert up.events("crashed") == []
    summary = up.lines[-1]
    assert summary["kind"] == "summary"
    assert summary["peakReplicas"] == peak


def test_a_killed_worker_is_restarted(redis_url: str, tmp_path: Path) -> None:
    pool = manifest("crashy", scaling={"minReplicas": 1, "maxReplicas": 1})
    with UpProcess(pool, redis_url=redis_url, tmp=tmp_path) as up:
        ready = up.wait_for(lambda t: t["readyReplicas"] == 1, 15, "a worker heartbeating")
        (worker,) = ready["workers"]
        os.kill(worker["pid"], signal.SIGKILL)
        again = up.wait_for(
            lambda t: any(w["restarts"] == 1 and w["state"] == "running" for w in t["workers"]),
            15,
            "the worker restarted",
        )
        (restarted,) = again["workers"]
        assert restarted["name"] == worker["name"]  # the same slot, a new process
        assert restarted["pid"] != worker["pid"]
        (crash,) = up.events("crashed")
        assert f"pid {worker['pid']} exited with code -9" in crash["message"]
        with SyncQueue("uprec", redis_url=redis_url) as q:
            q.enqueue_many([{"ms": 1}] * 20)
            wait_until(lambda: q.counts()["completed"] == 20, 15, description="jobs done")
        assert up.stop() == 0


def test_a_crash_loop_backs_off(redis_url: str, tmp_path: Path) -> None:
    # An app that cannot load: `shoal worker` exits 1 at once, every time.
    broken = "tests.integration.worker_runtime.supervisor.apps:missing"
    pool = manifest("loop", app=broken, scaling={"minReplicas": 1, "maxReplicas": 1})
    with UpProcess(pool, redis_url=redis_url, tmp=tmp_path) as up:
        up.wait_for(lambda t: len(up.events("started")) >= 3, 20, "two restarts")
        starts = [e["t"] for e in up.events("started")]
        crashes = up.events("crashed")
        assert up.stop() == 0
    # From each crash to the next start: 1 s then 2 s of backoff, no spinning (the time a
    # process takes to fail varies with machine load, so it is left out of the measure).
    waits = [start - crash["t"] for crash, start in zip(crashes, starts[1:], strict=False)]
    assert waits[0] >= 1.0 - 0.05
    assert waits[1] >= 2.0 - 0.05
    assert "has no attribute 'missing'" in crashes[0]["message"]
    assert "restarting in 1 s" in crashes[0]["message"]
    assert "restarting in 2 s" in crashes[1]["message"]


def test_sigterm_lets_running_jobs_finish_then_exits_zero(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    pool = manifest("drain", scaling={"minReplicas": 1, "maxReplicas": 1})
    with UpProcess(pool, redis_url=redis_url, tmp=tmp_path) as up:
        up.wait_for(lambda t: t["readyReplicas"] == 1, 15, "a worker heartbeating")
        with SyncQueue("uprec", redis_url=redis_url) as q:
            q.enqueue_many([{"ms": 1500}] * 5)
        wait_until(lambda: r.hlen("test:started") == 5, 10, description="5 jobs running")
        assert up.stop() == 0
        assert up.events("killed") == []
    assert r.hvals("test:exec") == ["1"] * 5  # finished, not handed back
    assert SyncQueue("uprec", redis_url=redis_url).counts()["completed"] == 5


def test_scale_down_stops_the_idle_worker_not_the_busy_one(redis_url: str, tmp_path: Path) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    # KEDA's simple rule makes the sizes plain: 200 waiting / 50 -> 2 (max); then 1 job in
    # flight and nothing waiting -> 1.
    scaling = {"minReplicas": 0, "maxReplicas": 2, "targetBacklogPerReplica": 50}
    with UpProcess(manifest("pick", scaling=scaling), redis_url=redis_url, tmp=tmp_path) as up:
        up.wait_for(lambda t: True, 15, "the first tick")
        with SyncQueue("uprec", redis_url=redis_url) as q:
            (long_job,) = q.enqueue_many([{"ms": 5000}])
            q.enqueue_many([{"ms": 10}] * 200)
        up.wait_for(lambda t: t["readyReplicas"] == 2, 15, "two workers heartbeating")
        wait_until(lambda: r.hget("test:pod", long_job.id), 10, description="long job running")
        busy = r.hget("test:pod", long_job.id)
        up.wait_for(lambda t: bool(up.events("stopping")), 15, "a scale-down to 1")
        (stopping,) = up.events("stopping")
        assert stopping["worker"] != busy
        assert "(0 in flight)" in stopping["message"]
        wait_until(lambda: r.hget("test:exec", long_job.id) == "1", 15, description="long job done")
        assert r.hget("test:started", long_job.id) == "1"  # never interrupted, never rerun
        assert up.stop() == 0


def test_a_key_prefix_in_the_manifest_is_what_workers_and_the_autoscaler_use(
    redis_url: str, tmp_path: Path
) -> None:
    pool = manifest("prefixed", redis={"keyPrefix": "team-up"})
    with UpProcess(pool, redis_url=redis_url, tmp=tmp_path) as up:
        up.wait_for(lambda t: True, 15, "the first tick")
        with SyncQueue("uprec", redis_url=redis_url, prefix="team-up") as q:
            q.enqueue_many([{"ms": 5}] * 500)
        up.wait_for(lambda t: t["backlog"] > 0 and t["replicas"] >= 1, 15, "woken by team-up")

        def all_completed() -> bool:
            queue = SyncQueue("uprec", redis_url=redis_url, prefix="team-up")
            return queue.counts()["completed"] == 500

        wait_until(all_completed, 40, description="500 jobs completed under team-up")
        assert up.stop() == 0
    assert SyncQueue("uprec", redis_url=redis_url).counts()["completed"] == 0  # default prefix
