"""Loop supervision: a crashed loop is restarted after a backoff and counted as down meanwhile."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from tests.harness.async_waiting import eventually
from worker_runtime.consuming.supervision import LoopSupervisor
from worker_runtime.observing.metrics import WorkerMetrics
from worker_runtime.redis_io.connection import is_script_error


async def test_a_crashed_loop_restarts_after_a_backoff_and_is_down_meanwhile() -> None:
    crashes: list[tuple[str, str, float]] = []
    runs = 0
    release = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"crash {runs}")
        await release.wait()  # the third run keeps going, then ends on its own

    supervisor = LoopSupervisor(
        on_crash=lambda name, exc, delay: crashes.append((name, str(exc), delay)),
        base=0.2,
        cap=1.0,
    )
    task = supervisor.spawn("fetch", loop, task_name="test-fetch")

    async def down() -> bool:
        return "fetch" in supervisor.down

    await eventually(down, timeout=5, interval=0.001, description="down after the crash")

    async def third_run() -> bool:
        return runs == 3 and not supervisor.down

    await eventually(third_run, timeout=5, description="restarted twice")
    release.set()
    await asyncio.wait_for(task, timeout=5)  # a loop that returns is not restarted
    assert [c[:2] for c in crashes] == [("fetch", "crash 1"), ("fetch", "crash 2")]
    assert 0.1 <= crashes[0][2] <= 0.2
    assert 0.2 <= crashes[1][2] <= 0.4  # backing off


async def test_cancelling_the_supervisor_stops_the_loop() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.Event().wait()

    supervisor = LoopSupervisor(on_crash=lambda *_: None)
    task = supervisor.spawn("lease", loop, task_name="test-lease")
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_script_errors_are_told_from_other_replies() -> None:
    assert is_script_error(
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value "
                      "script: 7e6b, on @user_script:1.")
    )  # fmt: skip
    assert is_script_error(ResponseError("ERR Error running script (call to f_1): oops"))
    assert not is_script_error(ResponseError("OOM command not allowed"))
    assert not is_script_error(NoScriptError("No matching script"))
    assert not is_script_error(ConnectionError("refused"))


def test_metrics_count_script_errors_and_loop_crashes() -> None:
    metrics = WorkerMetrics()
    error = ResponseError("ERR x script: 1, on @user_script:1.")
    metrics.script_error("q", operation="complete", error=error)
    metrics.loop_crashed("q", loop="fetch", error=RuntimeError(), restart_in=0.5)
    value = metrics.registry.get_sample_value
    assert value("worker_script_errors_total", {"queue": "q", "operation": "complete"}) == 1
    assert value("worker_loop_crashes_total", {"queue": "q", "loop": "fetch"}) == 1
    assert value("worker_redis_errors_total", {"queue": "q", "operation": "complete"}) is None


async def test_a_cancellation_turned_into_a_connection_error_stops_the_loop() -> None:
    # redis-py may answer a cancelled read with ConnectionError: that is the worker stopping,
    # not a crash, and the loop must not be restarted (stop would wait on it for ever).
    crashes: list[str] = []
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectionError("Connection closed by server.") from None

    supervisor = LoopSupervisor(on_crash=lambda name, exc, delay: crashes.append(name))
    task = supervisor.spawn("fetch", loop, task_name="test-fetch")
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert crashes == []
