"""Alerts to a real local HTTP receiver: bounded in a failure storm, retried on errors, and
sent on health transitions (Redis stopped and restarted)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.harness.redis_server import RedisServer
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.observed import observed, observed_settings, retrying
from worker_runtime import Job, Queue, Worker
from worker_runtime.observing.alerts import Alerting, WebhookSink

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook endpoint on loopback that records each request; answers from ``statuses``
    in turn (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.bodies.append(json.loads(body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def kinds(self) -> list[str]:
        with self.lock:
            return [b["kind"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def _async(value: bool) -> bool:
    return value


async def test_a_failure_storm_sends_a_bounded_number_of_requests(
    redis_url: str, receiver: Receiver
) -> None:
    # 10 per second, burst 3: 60 dead letters in a burst must not become 60 requests.
    sink = WebhookSink(receiver.url, max_per_minute=600, burst=3, retry_delay_seconds=0.01)
    alerting = Alerting([sink], check_interval_seconds=3600)
    worker = Worker(settings=fast_settings(redis_url), observers=[alerting], extensions=[alerting])

    @worker.processor("storm", config=retrying(1), concurrency=60)
    async def handle(job: Job[Any]) -> None:
        raise RuntimeError("downstream is on fire")

    started = time.monotonic()
    async with running(worker), Queue("storm", redis_url=redis_url) as q:
        await q.enqueue_many([{"secret": "hunter2"}] * 60)

        async def all_accounted() -> bool:
            with receiver.lock:
                individual = sum(b["kind"] == "job_dead_lettered" for b in receiver.bodies)
                summarised = sum(
                    b["details"]["suppressed"].get("job_dead_lettered", 0)
                    for b in receiver.bodies
                    if b["kind"] == "alerts_suppressed"
                )
            return individual + summarised == 60

        await eventually(all_accounted, timeout=15, description="60 alerts sent or summarised")
    elapsed = time.monotonic() - started
    assert len(receiver.bodies) == sink.requests
    assert sink.requests <= 3 + 10 * elapsed + 1
    assert sink.requests < 30
    assert "alerts_suppressed" in receiver.kinds()
    first = receiver.bodies[0]
    assert first["kind"] == "job_dead_lettered"
    assert first["severity"] == "critical"
    assert first["queue"] == "storm"
    assert first["worker_id"] == worker.id
    assert "downstream is on fire" in first["message"]
    assert "hunter2" not in json.dumps(receiver.bodies)  # no payloads unless asked


async def test_server_errors_are_retried(redis_url: str, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    sink = WebhookSink(receiver.url, attempts=3, retry_delay_seconds=0.01)
    alerting = Alerting([sink], check_interval_seconds=3600)
    worker = Worker(settings=fast_settings(redis_url), observers=[alerting], extensions=[alerting])

    @worker.processor("flaky", config=retrying(1))
    async def handle(job: Job[Any]) -> None:
        raise RuntimeError("nope")

    async with running(worker), Queue("flaky", redis_url=redis_url) as q:
        (job,) = await q.enqueue_many([{}])
        await eventually(lambda: _async(sink.delivered == 1), description="delivered")
    assert len(receiver.bodies) == 3  # 500, 503, then 200
    assert {b["job_id"] for b in receiver.bodies} == {job.id}
    assert sink.failed == 0


async def test_health_transitions_alert(
    own_redis: RedisServer, receiver: Receiver, tmp_path: Path
) -> None:
    settings = observed_settings(
        own_redis.url, tmp_path, status_store_enabled=False, alert_webhook_url=receiver.url
    )
    worker = Worker(settings=settings)

    @worker.processor("watched")
    async def handle(job: Job[Any]) -> None:
        pass

    async with observed(worker, settings) as obs:
        assert obs.alerting is not None
        await eventually(lambda: _async(worker.consumers["watched"].fetched_once))
        await asyncio.to_thread(own_redis.stop)
        await eventually(
            lambda: _async("worker_unhealthy" in receiver.kinds()), description="unhealthy alert"
        )
        await asyncio.to_thread(own_redis.start)
        await eventually(
            lambda: _async("worker_recovered" in receiver.kinds()),
            timeout=20,
            description="recovered alert",
        )
    unhealthy = next(b for b in receiver.bodies if b["kind"] == "worker_unhealthy")
    assert "watched: redis_unreachable" in unhealthy["message"]
