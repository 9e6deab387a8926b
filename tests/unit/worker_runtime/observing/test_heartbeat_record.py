"""The heartbeat record's Redis encoding and the liveness rule."""

from __future__ import annotations

from worker_runtime.observing.heartbeat import Heartbeat, WorkerInfo


def test_record_round_trips_through_redis_strings() -> None:
    info = WorkerInfo(
        id="pod-1-abc",
        pod="pod-1",
        host="node",
        pid=42,
        version="0.1.0",
        queues=["emails", "images"],
        in_flight={"emails": 3, "images": 0},
        capacity={"emails": 10, "images": 2},
        max_jobs=50,
        processed=10,
        failed=1,
        started_at=1000,
        last_heartbeat=2000,
        interval_ms=30_000,
        draining=False,
    )
    fields = info.to_redis()
    assert all(isinstance(v, str) for v in fields.values())
    assert WorkerInfo.from_redis(fields) == info
    assert info.active == 3


def test_alive_until_n_intervals_without_a_tick() -> None:
    beat = Heartbeat(interval_seconds=1.0, missed_for_dead=3)
    assert beat.alive(now=100.0)  # not started: nothing to judge
    beat.last_tick = 100.0
    assert beat.alive(now=102.9)
    assert beat.alive(now=103.0)
    assert not beat.alive(now=103.1)
