"""What a worker checks as it starts: Redis' eviction policy (a warning in the logs and in
health unless ``noeviction``) and its probe port (a one-line error when it is taken)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import structlog

from tests.harness.async_waiting import eventually
from tests.harness.ports import free_port
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import fast_settings
from tests.integration.worker_runtime.processes import output_of, sigterm_and_wait, start_worker
from worker_runtime import Job, Worker
from worker_runtime.config import WorkerSettings
from worker_runtime.observing.http import ProbePortError, ProbeServer
from worker_runtime.observing.observability import default_probe_port

pytestmark = pytest.mark.integration


def _worker(url: str) -> Worker:
    worker = Worker(settings=fast_settings(url))

    @worker.processor("chk")
    async def handle(job: Job[Any]) -> None:
        pass

    return worker


@pytest.mark.parametrize("policy", ["allkeys-lru", "noeviction"])
async def test_an_evicting_redis_is_reported_at_start_and_in_health(policy: str) -> None:
    with RedisServer(extra_args=["--maxmemory-policy", policy]) as server:
        worker = _worker(server.url)
        with structlog.testing.capture_logs() as logs:
            await worker.start()
        try:
            health = worker.health()
            report = worker.health_report()
        finally:
            await worker.stop(grace_seconds=1)
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    if policy == "noeviction":
        assert not any("maxmemory-policy" in w for w in warnings)
        assert health.degraded == []
        return
    assert any("maxmemory-policy is allkeys-lru" in w for w in warnings), logs
    assert any(c.name == "redis" and not c.ok for c in health.components)
    assert any("maxmemory-policy is allkeys-lru" in d for d in health.degraded)
    assert "maxmemory-policy is allkeys-lru" in report
    assert health.healthy  # a warning, not an outage: probes stay green


async def test_two_workers_on_one_probe_port_second_exits_with_one_line(redis_url: str) -> None:
    port = str(free_port())
    first = start_worker(redis_url, HEALTH_PORT=port)
    second = None
    try:

        async def serving() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", int(port))
            except OSError:
                return False
            writer.close()
            return True

        await eventually(serving, timeout=15, description="first worker's probes")
        second = start_worker(redis_url, HEALTH_PORT=port)
        rc = await asyncio.to_thread(second.wait, 30)
        output = output_of(second)
        assert first.poll() is None  # the first one is unaffected
        assert await asyncio.to_thread(sigterm_and_wait, first) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert rc != 0
    assert "Traceback" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert error_lines == [
        f"Error: HEALTH_PORT {port} is in use (another worker on this host?): "
        "set HEALTH_PORT to a free port, or 0 for any"
    ], output


async def test_a_default_port_in_use_gives_way_to_a_free_one(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        explicit = ProbeServer(host="127.0.0.1", port=port)
        fallback = ProbeServer(host="127.0.0.1", port=port, any_port_if_busy=True)
        worker = _worker(redis_url)
        with pytest.raises(ProbePortError, match=f"HEALTH_PORT {port} is in use"):
            await explicit.start(worker)
        await fallback.start(worker)
        try:
            assert fallback.port not in (0, port)
        finally:
            await fallback.stop(worker)


def test_only_an_unset_port_outside_kubernetes_may_move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEALTH_PORT", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert default_probe_port(WorkerSettings())
    assert not default_probe_port(WorkerSettings(HEALTH_PORT=9091))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert not default_probe_port(WorkerSettings())
