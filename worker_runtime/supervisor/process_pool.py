"""Local worker processes of one pool: spawn, drain on SIGTERM, restart crashed ones with backoff.

A *slot* is a worker the pool wants (what a pod is to a Deployment); it keeps its name
(``up-<pool>-<n>``, the process's POD_NAME) across restarts. Shrinking removes slots; their
processes drain (SIGTERM: finish in-flight jobs, hand the rest back, exit) and are killed only
past the drain time (the job timeout plus a margin, as the pod's termination grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from worker_runtime.core.spec import WorkerPool
from worker_runtime.core.worker_env import termination_grace_seconds
from worker_runtime.observing.heartbeat import WorkerInfo
from worker_runtime.supervisor.process_env import ProcessIdentity, process_env
from worker_runtime.supervisor.report import Event, EventKind, WorkerRow, WorkerState
from worker_runtime.supervisor.restarts import CrashLoop, RestartPolicy, after_crash
from worker_runtime.supervisor.scale_down import Candidate, choose_to_stop

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If the supervisor itself is killed, its workers drain instead of running on as orphans.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass
class WorkerProcess:
    name: str
    slot: int
    proc: asyncio.subprocess.Process
    started_at: float
    log_path: Path
    in_flight: int | None = None  # from the heartbeat with this name and pid
    stop_sent_at: float | None = None
    kill_at: float | None = None
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None


@dataclass
class Slot:
    index: int
    name: str
    process: WorkerProcess | None = None
    crash_loop: CrashLoop = field(default_factory=CrashLoop)
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class PoolSettings:
    python: str = sys.executable
    heartbeat_seconds: float = 1.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    drain_seconds: float | None = None  # default: the pool's termination grace period


class ProcessPool:
    def __init__(
        self,
        pool: WorkerPool,
        *,
        redis_url: str,
        log_dir: Path,
        local_env: Mapping[str, str],
        settings: PoolSettings,
        clock_start: float,
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        if pool.spec.app is None:
            raise ValueError("spec.app: required to run workers locally")
        self.pool = pool
        self.app = pool.spec.app
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.local_env = dict(local_env)
        self.settings = settings
        self.drain_seconds = settings.drain_seconds or float(termination_grace_seconds(pool.spec))
        self.capacity = pool.spec.per_replica_capacity()
        self.slots: dict[str, Slot] = {}
        self.draining: list[WorkerProcess] = []
        self.events: list[Event] = []
        self.starts = self.crashes = self.kills = 0
        self._t0 = clock_start
        self._on_exit = on_exit
        self._watchers: set[asyncio.Task[None]] = set()

    # --- what the supervisor asks ---------------------------------------------------------

    async def scale_to(self, replicas: int, now: float) -> None:
        """Add slots (started at once) or remove the cheapest ones (drained)."""
        missing = replicas - len(self.slots)
        for _ in range(missing):
            index = self._free_index()
            slot = Slot(index=index, name=f"up-{self.pool.metadata.name}-{index}")
            self.slots[slot.name] = slot
            await self._spawn(slot, now)
        if missing < 0:
            candidates = [
                Candidate(
                    name=s.name,
                    has_process=s.process is not None,
                    in_flight=s.process.in_flight if s.process else None,
                    started_at=s.process.started_at if s.process else now,
                )
                for s in self.slots.values()
            ]
            for name in choose_to_stop(candidates, -missing):
                slot = self.slots.pop(name)
                if slot.process is not None:
                    self._terminate(slot.process, now, why="scale-down")

    async def check(self, now: float) -> None:
        """Notice exits, restart crashed workers when their backoff is over, kill overdue drains."""
        for slot in self.slots.values():
            p = slot.process
            if p is not None and p.exited:
                slot.process = None
                slot.crash_loop = after_crash(
                    self.settings.restart, slot.crash_loop, ran_seconds=now - p.started_at, now=now
                )
                self.crashes += 1
                delay = (slot.crash_loop.restart_at or now) - now
                self.record_event(
                    now,
                    "crashed",
                    slot.name,
                    f"pid {p.pid} exited with code {p.proc.returncode}"
                    f"{_last_line(p.log_path)}; restarting in {delay:g} s (log {p.log_path})",
                )
        for slot in self.slots.values():
            due = slot.crash_loop.restart_at
            if slot.process is None and due is not None and due <= now:
                slot.restarts += 1
                await self._spawn(slot, now)
        for p in list(self.draining):
            if p.exited:
                self.draining.remove(p)
                took = now - (p.stop_sent_at or now)
                how = "killed" if p.killed else f"exit code {p.proc.returncode}"
                self.record_event(
                    now, "stopped", p.name, f"pid {p.pid} drained in {took:.1f} s ({how})"
                )
            elif p.kill_at is not None and now >= p.kill_at and not p.killed:
                self._kill(p, now, f"still running {self.drain_seconds:g} s after SIGTERM")

    def note_heartbeats(self, workers: Sequence[WorkerInfo]) -> None:
        """Per-process load from the heartbeats; matched by name and pid (a restarted
        process reuses its slot's name while the old record may not have expired yet)."""
        by_process = {(w.pod, w.pid): w for w in workers}
        for p in self._live():
            info = by_process.get((p.name, p.pid))
            p.in_flight = info.active if info is not None else p.in_flight

    def stop_all(self, now: float) -> None:
        """Drain every worker (shutdown)."""
        for slot in list(self.slots.values()):
            if slot.process is not None:
                self._terminate(slot.process, now, why="shutdown")
        self.slots.clear()

    def kill_all(self, now: float, why: str) -> None:
        for p in self._live():
            if not p.exited and not p.killed:
                self._kill(p, now, why)

    async def close(self) -> None:
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    # --- state ------------------------------------------------------------------------------

    @property
    def process_count(self) -> int:
        """Processes alive, draining ones included."""
        return sum(1 for p in self._live() if not p.exited)

    def running(self) -> list[WorkerProcess]:
        return [s.process for s in self.slots.values() if s.process and not s.process.exited]

    def rows(self, now: float) -> list[WorkerRow]:
        rows = [self._row(s, now) for s in self.slots.values()]
        rows += [self._process_row(p, "draining", 0, now) for p in self.draining]
        return sorted(rows, key=lambda r: (r.state == "draining", r.name))

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    # --- inside -----------------------------------------------------------------------------

    def _live(self) -> list[WorkerProcess]:
        return [s.process for s in self.slots.values() if s.process] + self.draining

    def _free_index(self) -> int:
        used = {s.index for s in self.slots.values()} | {p.slot for p in self.draining}
        return next(i for i in range(len(used) + 1) if i not in used)

    async def _spawn(self, slot: Slot, now: float) -> None:
        identity = ProcessIdentity(slot.name, self.redis_url, self.settings.heartbeat_seconds)
        env = process_env(self.pool, identity, local=self.local_env)
        log_path = self.log_dir / f"{slot.name}.log"
        command = [self.settings.python, "-m", "shoal", "worker", self.app]
        try:
            with log_path.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    # Ctrl-C in a terminal reaches the supervisor only; it drains the workers.
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
        except OSError as exc:
            slot.crash_loop = after_crash(
                self.settings.restart, slot.crash_loop, ran_seconds=0, now=now
            )
            self.crashes += 1
            self.record_event(now, "crashed", slot.name, f"cannot start {command[0]}: {exc}")
            return
        slot.process = WorkerProcess(slot.name, slot.index, proc, now, log_path)
        slot.crash_loop = CrashLoop(
            crashes=slot.crash_loop.crashes
        )  # keep the count, not the due time
        self.starts += 1
        watcher = asyncio.create_task(self._watch(proc), name=f"shoal-up-watch-{slot.name}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        again = f" (restart {slot.restarts})" if slot.restarts else ""
        self.record_event(now, "started", slot.name, f"pid {proc.pid}{again}")

    async def _watch(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        self._on_exit()

    def _terminate(self, p: WorkerProcess, now: float, *, why: str) -> None:
        p.stop_sent_at, p.kill_at = now, now + self.drain_seconds
        self.draining.append(p)
        if not p.exited:
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        load = "in-flight unknown" if p.in_flight is None else f"{p.in_flight} in flight"
        self.record_event(
            now, "stopping", p.name, f"{why}: SIGTERM to pid {p.pid} ({load}), draining"
        )

    def _kill(self, p: WorkerProcess, now: float, why: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            p.proc.kill()
        p.killed = True
        self.kills += 1
        self.record_event(now, "killed", p.name, f"SIGKILL to pid {p.pid}: {why}")

    def record_event(self, now: float, kind: EventKind, worker: str | None, message: str) -> None:
        self.events.append(
            Event(t=round(now - self._t0, 3), kind=kind, worker=worker, message=message)
        )

    def _row(self, slot: Slot, now: float) -> WorkerRow:
        p = slot.process
        if p is None:
            due = slot.crash_loop.restart_at
            return WorkerRow(
                name=slot.name,
                pid=None,
                state="backoff",
                in_flight=None,
                capacity=self.capacity,
                restarts=slot.restarts,
                up_seconds=None,
                restart_in_seconds=None if due is None else round(max(due - now, 0.0), 1),
            )
        state: WorkerState = "starting" if p.in_flight is None else "running"
        return self._process_row(p, state, slot.restarts, now)

    def _process_row(
        self, p: WorkerProcess, state: WorkerState, restarts: int, now: float
    ) -> WorkerRow:
        return WorkerRow(
            name=p.name,
            pid=p.pid,
            state=state,
            in_flight=p.in_flight,
            capacity=self.capacity,
            restarts=restarts,
            up_seconds=round(now - p.started_at, 1),
        )


def _last_line(path: Path) -> str:
    """The last line a process wrote (its error, usually), for the crash event."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - 4096, 0))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((ln for ln in reversed(lines) if ln), "")
    return f": {last[:200]}" if last else ""
