"""A worker started in a project folder writes nothing there and says nothing about Alembic."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.waiting import wait_until
from tests.integration.worker_runtime.processes import APP, REPO

pytestmark = pytest.mark.integration


def _completed_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            query = "SELECT count(*) FROM shoal_job_status WHERE status = 'completed'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def test_the_status_store_lives_in_the_state_directory(redis_url: str, tmp_path: Path) -> None:
    project, state = tmp_path / "project", tmp_path / "state"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATUS_STORE")}
    env |= {"REDIS_URL": redis_url, "PYTHONPATH": str(REPO), "HEALTH_PORT": "0",
            "XDG_STATE_HOME": str(state), "LOG_FORMAT": "json"}  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shoal", "worker", APP],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        enqueue = [sys.executable, "-m", "shoal", "enqueue", "rec", "--data", '{"ms": 1}']
        subprocess.run(enqueue, env=env, check=True, capture_output=True, timeout=60)
        db = state / "shoal" / "status.db"
        wait_until(lambda: _completed_rows(db) == 1, 60, 0.1, description="the job's row")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert sorted(os.listdir(project)) == []
    output = log.read_text(errors="replace")
    assert "alembic" not in output.lower(), output
