"""Worker subprocesses for tests that kill, signal or outlive a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
APP = "tests.integration.worker_runtime.apps:app"


def start_worker(
    redis_url: str, *extra: str, app: str = APP, **env: str
) -> subprocess.Popen[bytes]:
    """`shoal worker` on ``app`` (the recording app by default), with short leases so stalls
    show fast (``WORKER_LEASE_MS`` in ``env`` overrides them).

    Output goes to a file (`output_of`), never a pipe: a worker logs a line per job, and an
    unread pipe fills up and freezes its event loop.
    """
    full_env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "WORKER_LEASE_MS": "1500",
        "PYTHONPATH": str(REPO),
        # Several workers at once: any free probe port, no shared SQLite file in the repo.
        "HEALTH_PORT": "0",
        "STATUS_STORE_ENABLED": "false",
        **env,
    }
    log = tempfile.NamedTemporaryFile(prefix="shoal-worker-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "worker", app, *extra],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    _logs[proc.pid] = Path(log.name)
    return proc


_logs: dict[int, Path] = {}


def output_of(proc: subprocess.Popen[bytes]) -> str:
    """Everything the worker printed so far."""
    return _logs[proc.pid].read_text(errors="replace")


def sigterm_and_wait(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)
