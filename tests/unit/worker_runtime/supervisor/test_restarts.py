"""Crashed workers restart with exponential backoff; a good run forgets the crashes."""

from __future__ import annotations

import pytest

from worker_runtime.supervisor.restarts import CrashLoop, RestartPolicy, after_crash


def test_delays_double_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_seconds=1, max_seconds=30)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_crash_loop_waits_longer_each_time() -> None:
    policy = RestartPolicy(initial_seconds=1, max_seconds=30, stable_seconds=10)
    loop, now, due = CrashLoop(), 0.0, []
    for _ in range(4):
        loop = after_crash(policy, loop, ran_seconds=0.5, now=now)
        assert loop.restart_at is not None
        due.append(loop.restart_at - now)
        now = loop.restart_at + 0.5  # restarted, crashed again half a second later
    assert due == [1, 2, 4, 8]
    assert loop.crashes == 4


def test_a_stable_run_starts_the_count_again() -> None:
    policy = RestartPolicy(initial_seconds=1, stable_seconds=10)
    loop = CrashLoop(crashes=5, restart_at=None)
    after = after_crash(policy, loop, ran_seconds=10.0, now=100.0)
    assert after == CrashLoop(crashes=1, restart_at=101.0)
    short = after_crash(policy, loop, ran_seconds=9.9, now=100.0)
    assert short == CrashLoop(crashes=6, restart_at=100.0 + 30)


def test_delay_needs_a_crash() -> None:
    with pytest.raises(ValueError, match="attempts_made"):
        RestartPolicy().delay(0)
