"""Job log lines: JSON with job id, queue, attempt and processing time; no payload by default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from worker_runtime.consuming.processor import Job
from worker_runtime.observing.logs import (
    InvalidLogSetting,
    JobLogObserver,
    LogFormat,
    configure_logging,
    use_json,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(log_format="json", level="info", stream=out)
    yield out
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


def _job() -> Job[dict[str, str]]:
    return Job(
        id="j1",
        queue="emails",
        data={"email": "someone@example.com"},
        attempt=2,
        attempts_made=1,
        stalls=0,
        raw='{"email": "someone@example.com"}',
        started_at=0.0,
    )


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_completed_line_has_the_seed_fields_and_no_payload(stream: io.StringIO) -> None:
    observer = JobLogObserver(worker_id="w1")
    observer.job_started(_job())  # debug: filtered at info
    observer.job_completed(_job(), duration=0.0123, result=None)
    (line,) = _lines(stream)
    assert line["event"] == "job completed"
    assert line["level"] == "info"
    assert line["job_id"] == "j1"
    assert line["queue"] == "emails"
    assert line["attempt"] == 2
    assert line["processing_time_ms"] == pytest.approx(12.3)
    assert line["worker_id"] == "w1"
    assert "someone@example.com" not in stream.getvalue()


def test_dead_letter_line_is_an_error_with_payload_when_asked(stream: io.StringIO) -> None:
    JobLogObserver(log_payloads=True).job_failed(
        _job(),
        duration=0.5,
        error="boom",
        error_type="ValueError",
        traceback="Traceback ...",
        outcome="dead",
        retry_delay_ms=0,
    )
    (line,) = _lines(stream)
    assert line["level"] == "error"
    assert line["event"] == "job moved to dead letter"
    assert line["error"] == "boom"
    assert line["payload"] == '{"email": "someone@example.com"}'


def test_redis_outage_is_logged_once_until_recovered(stream: io.StringIO) -> None:
    observer = JobLogObserver()
    for _ in range(5):
        observer.redis_error("emails", operation="fetch", error=ConnectionError("refused"))
    observer.redis_recovered("emails")
    events = [line["event"] for line in _lines(stream)]
    assert events == ["Redis unreachable; retrying", "Redis reachable again"]
    assert _lines(stream)[1]["failed_calls"] == 5


def test_format_choice_and_bad_level() -> None:
    assert use_json("auto", io.StringIO()) is True  # not a TTY: production
    assert use_json("console", io.StringIO()) is False
    with pytest.raises(InvalidLogSetting, match="LOG_LEVEL"):
        configure_logging(level="loud", stream=io.StringIO())  # fails before changing anything


def test_at_warning_level_only_failures_are_logged() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(log_format="json", level="warning", stream=out)
    try:
        observer = JobLogObserver()
        observer.job_completed(_job(), duration=0.01, result=None)
        observer.job_failed(
            _job(),
            duration=0.01,
            error="boom",
            error_type="ValueError",
            traceback="",
            outcome="retry",
            retry_delay_ms=100,
        )
        assert [line["event"] for line in _lines(out)] == ["job failed, will retry"]
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_worker_tracebacks_carry_no_local_variables(log_format: LogFormat) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(log_format=log_format, level="info", stream=stream)
    try:
        payload_secret = "card-4111-1111"  # noqa: F841  (a local in the failing frame)
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("test").exception("job failed")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    out = stream.getvalue()
    assert "boom" in out
    assert "card-4111-1111" not in out
