"""The seed's health fields and text report (pure rendering)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from worker_runtime.observing.health import (
    ComponentHealth,
    QueueHealth,
    WorkerHealth,
    format_uptime,
    readiness_problems,
    render_report,
    startup_problems,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (45_000, "45s"),
        (120_000, "2m 0s"),
        (5_025_999, "1h 23m 45s"),
        (90_061_000, "1d 1h 1m 1s"),
    ],
)
def test_uptime_format(ms: int, text: str) -> None:
    assert format_uptime(ms) == text


def _queue(name: str, state: str = "running") -> QueueHealth:
    return QueueHealth.model_validate(
        {
            "name": name,
            "state": state,
            "active_jobs": 1,
            "processed_jobs": 2,
            "failed_jobs": 0,
            "concurrency": 5,
            "redis_ok": True,
            "fetched_once": True,
        }
    )


def _health(**overrides: object) -> WorkerHealth:
    fields: dict[str, object] = {
        "healthy": True,
        "uptime": 5_025_000,
        "last_heartbeat": 1_234_567_890,
        "active_jobs": 3,
        "processed_jobs": 156,
        "failed_jobs": 2,
        "queues": [_queue("image-processing"), _queue("chat-processing")],
        "worker_id": "w1",
        "live": True,
        "ready": True,
        "draining": False,
    }
    fields.update(overrides)
    return WorkerHealth.model_validate(fields)


def test_report_matches_the_seed_line_for_line() -> None:
    assert render_report(_health()) == (
        "=== Worker Health Report ===\n"
        "Status: ✓ HEALTHY\n"
        "Uptime: 1h 23m 45s\n"
        "Active Jobs: 3\n"
        "Processed: 156\n"
        "Failed: 2\n"
        "\n"
        "Queues:\n"
        "  - image-processing: ✓ Running\n"
        "  - chat-processing: ✓ Running"
    )


def test_unhealthy_report_names_the_queue_state_and_warnings() -> None:
    report = render_report(
        _health(
            healthy=False,
            queues=[_queue("emails", "redis_unreachable")],
            degraded=["status_store: OperationalError; 12 buffered, 0 dropped"],
        )
    )
    assert "Status: ✗ UNHEALTHY" in report
    assert "  - emails: ✗ Redis unreachable" in report
    assert report.endswith("Warnings:\n  - status_store: OperationalError; 12 buffered, 0 dropped")


def test_json_uses_the_seed_field_names() -> None:
    data = _health(components=[ComponentHealth(name="status_store", ok=True)]).model_dump()
    for name in ("healthy", "uptime", "lastHeartbeat", "activeJobs", "processedJobs", "failedJobs"):
        assert name in data
    assert data["queues"][0]["activeJobs"] == 1
    assert data["components"] == [{"name": "status_store", "ok": True, "detail": ""}]


def _view(*, started: bool = True, draining: bool = False, **queues: tuple[bool, bool]) -> Any:
    """A worker as the probes read it: queues name=(redis_ok, fetched_once)."""
    consumers = {
        name: SimpleNamespace(redis_ok=ok, fetched_once=fetched, loops=SimpleNamespace(down=set()))
        for name, (ok, fetched) in queues.items()
    }
    return SimpleNamespace(
        started_at=1.0 if started else None, draining=draining, consumers=consumers
    )


def test_starting_ends_at_the_first_fetch_or_once_it_cannot_happen() -> None:
    assert startup_problems(_view(started=False, q=(True, False))) == ["not started"]
    assert startup_problems(_view(q=(True, False), r=(True, True))) == [
        "queue q: first fetch pending"
    ]
    assert startup_problems(_view(q=(True, True))) == []
    # Redis unreachable at start: starting is over (readiness says why it is not ready), so
    # the kubelet goes on to readiness and liveness instead of restarting it after 5 min.
    assert startup_problems(_view(q=(False, False))) == []
    assert readiness_problems(_view(q=(False, False))) == ["queue q: Redis unreachable"]
    assert startup_problems(_view(draining=True, q=(True, False))) == []
