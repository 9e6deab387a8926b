"""`shoal up` rejects broken manifests (field named, exit 2); `shoal demo` runs to the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.worker_runtime.supervisor.up_process import REPO, manifest

pytestmark = pytest.mark.integration


def shoal(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args],
        capture_output=True, text=True, input=stdin, env=env, cwd=REPO, timeout=timeout,
    )  # fmt: skip


def broken(**spec: object) -> str:
    pool = manifest("broken")
    pool["spec"].update(spec)
    return yaml.safe_dump(
        {**pool, "spec": {k: v for k, v in pool["spec"].items() if v is not None}}
    )


CASES = {
    "no app": (broken(app=None), ["spec.app: required by shoal up"]),
    "min above max": (
        broken(scaling={"minReplicas": 5, "maxReplicas": 2}),
        ["spec.scaling.maxReplicas: must be >= minReplicas"],
    ),
    "bad queue name": (broken(queues=["Bad Queue"]), ["spec.queues[0]"]),
    "string for an integer": (broken(concurrency="10"), ["spec.concurrency"]),
    "unknown field": (broken(replica=2), ["spec.replica"]),
    "password in the url": (broken(redis={"url": "redis://:hunter2@r:6379/0"}), ["spec.redis.url"]),
    "bad backoff type": (
        broken(retry={"backoff": {"type": "linear"}}),
        ["spec.retry.backoff.type"],
    ),
    "several at once": (
        broken(image=None, app=None, timeoutSeconds=0),
        ["spec.image: required", "spec.timeoutSeconds", "spec.app"],
    ),
    "wrong kind": (broken().replace("kind: WorkerPool", "kind: Deployment"), ["kind"]),
    "not yaml": ("spec: [unclosed", ["manifest: not valid YAML"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_manifests_are_rejected_naming_the_field(case: str) -> None:
    text, expected = CASES[case]
    out = shoal("up", "-f", "-", stdin=text)
    assert out.returncode == 2, out
    assert out.stdout == ""
    error = out.stderr.strip()
    assert "\n" not in error, error  # one line, no traceback
    assert error.startswith("Error: <stdin>: invalid WorkerPool: ")
    for field in expected:
        assert field in error


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    out = shoal("up", "-f", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == f"Error: cannot read {tmp_path / 'nope.yaml'}: No such file or directory"
    )


def test_demo_scales_up_and_back_to_zero_on_a_private_redis() -> None:
    # No REDIS_URL: the demo starts its own redis-server, as on a fresh machine.
    out = shoal("demo", "--jobs", "300", "--duration", "1", "--job-ms", "50", "--output", "json")
    assert out.returncode == 0, out.stderr
    assert "started a private Redis at redis://127.0.0.1:" in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    assert summary["kind"] == "summary"
    assert summary["jobs"] == 300
    assert summary["peakReplicas"] >= 1
    assert summary["message"].startswith("demo: 300 jobs done; workers 0 -> ")
    assert max(t["desiredReplicas"] for t in ticks) >= 1
    assert ticks[-1]["phase"] == "stopped"
    assert ticks[-1]["replicas"] == ticks[-1]["desiredReplicas"] == 0
    assert [e for t in ticks for e in t["events"] if e["kind"] in ("killed", "crashed")] == []
