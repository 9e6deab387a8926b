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
