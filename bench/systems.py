"""The systems under test and how to run one role of a system's bench script in its own process.

Each system's script speaks the same protocol (see shoal_bench.py): a role and flags on the
command line, JSON lines on stdout. Workers are measured from the outside: the orchestrator
reads the worker process's peak RSS (VmHWM) from /proc while it is still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_VENV = BENCH / ".venv-peers"
BULLMQ_DIR = BENCH / "peers" / "bullmq"


class BenchError(RuntimeError):
    """A bench process failed or broke the protocol; the message says which and why."""


@dataclass(frozen=True)
class System:
    key: str
    label: str
    argv: tuple[str, ...]
    extra_args: tuple[str, ...] = ()
    missing: str | None = None  # why it cannot run here (then run.sh installs it)
    notes: tuple[str, ...] = field(default=())

    def command(self, role: str, options: dict[str, Any]) -> list[str]:
        args = [*self.argv, role, *self.extra_args]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        return args


def _read_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def shoal_system(*, observability: bool = False) -> System:
    version = _read_version([sys.executable, "-c", "import importlib.metadata as m;"
                             "print(m.version('shoal'))"])  # fmt: skip
    label = f"Shoal {version or '?'}" + (" + observability" if observability else "")
    return System(
        key="shoal+obs" if observability else "shoal",
        label=label,
        argv=(sys.executable, str(BENCH / "shoal_bench.py")),
        extra_args=("--observability",) if observability else (),
        notes=(
            "keeps the newest 1000 completed records (QueueConfig.keep_completed)",
            *(
                (
                    "metrics, heartbeat, probe server, alert log sink and SQLite status store"
                    " on; per-job log lines off",
                )
                if observability
                else ()
            ),
        ),
    )


def bullmq_system() -> System:
    package = BULLMQ_DIR / "node_modules" / "bullmq" / "package.json"
    missing = None if package.exists() else f"npm ci in {BULLMQ_DIR} (bench/run.sh does it)"
    version = json.loads(package.read_text())["version"] if package.exists() else "?"
    return System(
        key="bullmq",
        label=f"BullMQ {version}",
        argv=("node", str(BULLMQ_DIR / "bench.mjs")),
        missing=missing,
        notes=("removeOnComplete {count: 1000} on the worker, like Shoal's retention",),
    )


def arq_system() -> System:
    python = PEERS_VENV / "bin" / "python"
    version = None
    if python.exists():
        version = _read_version(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('arq'))"]
        )
    missing = None if version else f"arq in {PEERS_VENV} (bench/run.sh installs it)"
    return System(
        key="arq",
        label=f"arq {version or '?'}",
        argv=(str(python), str(BENCH / "peers" / "arq_bench.py")),
        missing=missing,
        notes=("arq defaults: results kept 3600 s, queue polled every 0.5 s; no bulk enqueue",),
    )


# --- running a role -----------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM) in KiB, read from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


def _protocol_message(line: bytes) -> dict[str, Any] | None:
    if not line.startswith(b'{"event"'):
        return None
    try:
        message: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return None
    return message


class BenchProcess:
    """One running bench script: read its JSON events with deadlines, then stop it."""

    def __init__(
        self, system: System, role: str, proc: asyncio.subprocess.Process, stderr: IO[bytes]
    ) -> None:
        self.system = system
        self.role = role
        self.proc = proc
        self.stderr = stderr  # a temporary file: read back only to explain a failure

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace").strip()
        return text[-1500:] or "(no stderr)"

    async def event(self, name: str, *, limit_s: float) -> dict[str, Any]:
        """The next protocol line on stdout, which must be event ``name``.

        Lines that are not protocol JSON (a library's log output) are skipped.
        """
        assert self.proc.stdout is not None
        deadline = time.monotonic() + limit_s
        while True:
            try:
                line = await asyncio.wait_for(
                    self.proc.stdout.readline(), max(0.0, deadline - time.monotonic())
                )
            except TimeoutError:
                raise BenchError(
                    f"{self.system.label} {self.role}: no '{name}' within {limit_s:.0f} s"
                ) from None
            if not line:
                await self.proc.wait()
                raise BenchError(
                    f"{self.system.label} {self.role} exited with {self.proc.returncode} "
                    f"before '{name}':\n{self._stderr_tail()}"
                )
            message = _protocol_message(line)
            if message is None:
                continue
            if message["event"] != name:
                raise BenchError(
                    f"{self.system.label} {self.role}: expected '{name}', got {message}"
                )
            return message

    async def finish(self, *, limit_s: float) -> None:
        """Wait for a producer to exit by itself; a non-zero exit is an error."""
        try:
            code = await asyncio.wait_for(self.proc.wait(), limit_s)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise BenchError(
                f"{self.system.label} {self.role}: still running after {limit_s:.0f} s"
            ) from None
        if code != 0:
            raise BenchError(f"{self.system.label} {self.role} exited with {code}:\n"
                             f"{self._stderr_tail()}")  # fmt: skip

    async def terminate(self, *, grace: float = 15.0) -> None:
        """SIGTERM (each worker shuts down gracefully on it), SIGKILL after ``grace``."""
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.stderr.close()


@contextlib.asynccontextmanager
async def bench_process(
    system: System, role: str, options: dict[str, Any]
) -> AsyncIterator[BenchProcess]:
    # Closed by BenchProcess.terminate(), which the finally below always reaches.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    proc = await asyncio.create_subprocess_exec(
        *system.command(role, options),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=ROOT,
    )
    running = BenchProcess(system, role, proc, stderr)
    try:
        yield running
    finally:
        await running.terminate()


async def run_to_end(
    system: System, role: str, options: dict[str, Any], *, limit_s: float
) -> dict[str, Any]:
    """Run a producer role to completion and return its result event."""
    async with bench_process(system, role, options) as proc:
        result = await proc.event("result", limit_s=limit_s)
        await proc.finish(limit_s=limit_s)
        return result
