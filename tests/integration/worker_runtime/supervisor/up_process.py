"""`shoal up` as a subprocess in JSON-lines mode, its ticks collected by a reader thread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.harness.waiting import wait_until

REPO = Path(__file__).resolve().parents[4]
APP = "tests.integration.worker_runtime.supervisor.apps:worker"

Tick = dict[str, Any]


def manifest(name: str, *, app: str = APP, **spec: Any) -> dict[str, Any]:
    scaling = {"minReplicas": 0, "maxReplicas": 4, "targetDrainSeconds": 4,
               "scaleDownStabilizationSeconds": 2, "cooldownSeconds": 2}  # fmt: skip
    scaling |= spec.pop("scaling", {})
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {"image": "local", "app": app, "queues": ["uprec"], "concurrency": 10,
                 "timeoutSeconds": 30, "scaling": scaling, **spec},
    }  # fmt: skip


class UpProcess:
    """`python -m shoal up -f FILE --output json`; ``ticks`` fills as lines arrive."""

    def __init__(self, pool: dict[str, Any], *, redis_url: str, tmp: Path, tick: float = 0.5):
        self.path = tmp / "pool.yaml"
        self.path.write_text(yaml.safe_dump(pool))
        self.log_dir = tmp / "logs"
        self.lines: list[dict[str, Any]] = []
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("REDIS_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shoal", "up", "-f", str(self.path), "--redis-url", redis_url,
             "--output", "json", "--tick", str(tick), "--log-dir", str(self.log_dir)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(json.loads(line))

    @property
    def ticks(self) -> list[Tick]:
        with self._lock:
            return [t for t in self.lines if t["kind"] == "tick"]

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for t in self.ticks for e in t["events"] if kind is None or e["kind"] == kind]

    def wait_for(self, predicate: Callable[[Tick], bool], timeout: float, what: str) -> Tick:
        """The first tick (already seen or to come) that satisfies ``predicate``."""

        def found() -> Tick | None:
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"shoal up exited {self.proc.returncode}: {self.stderr()}")
            return next((t for t in self.ticks if predicate(t)), None)

        return wait_until(found, timeout, interval=0.05, description=what)

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM (what Ctrl-C does): drain every worker, exit."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    def __enter__(self) -> UpProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # its workers get SIGTERM from the kernel (PDEATHSIG)
                self.proc.wait()
