"""The operator's logs: tracebacks never show local variables (they hold tokens and passwords)."""

from __future__ import annotations

import io
import logging

import pytest
import structlog

from shoal_operator.telemetry import logger, setup_logging
from worker_runtime.observing.logs import LogFormat


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_tracebacks_carry_no_local_variables(log_format: LogFormat) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging(level="info", log_format=log_format, stream=stream)
    try:
        password = "hunter2-secret"  # noqa: F841  (a local in the failing frame)
        raise RuntimeError("boom")
    except RuntimeError:
        logger("test").exception("pass failed")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    out = stream.getvalue()
    assert "boom" in out  # the traceback is there
    assert "hunter2-secret" not in out


def test_api_retries_total_is_a_counter() -> None:
    from prometheus_client import generate_latest

    from shoal_operator.telemetry import Telemetry

    t = Telemetry()
    t.api_retries.inc(3)
    text = generate_latest(t.registry).decode()
    assert "# TYPE shoal_operator_api_retries_total counter" in text
    assert "shoal_operator_api_retries_total 3.0" in text
