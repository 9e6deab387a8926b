"""When to restart a crashed worker process: exponential backoff that forgets after a good run.

Pure (time is a parameter). Like Kubernetes' CrashLoopBackOff, but with local-sized numbers:
1 s, 2 s, 4 s ... capped at 30 s, and a process that ran for ``stable_seconds`` starts the
count afresh. The delay maths is the runtime's retry backoff (`core.backoff`), without jitter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker_runtime.core.backoff import Backoff, retry_delay_ms


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    stable_seconds: float = 10.0  # a run at least this long forgets the crashes before it
    _backoff: Backoff = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        backoff = Backoff(
            type="exponential",
            delay_seconds=self.initial_seconds,
            max_delay_seconds=self.max_seconds,
            jitter=False,
        )
        object.__setattr__(self, "_backoff", backoff)

    def delay(self, crashes: int) -> float:
        """Seconds to wait before restarting after the ``crashes``-th crash in a row (>= 1)."""
        return retry_delay_ms(self._backoff, attempts_made=crashes) / 1000


@dataclass(frozen=True, slots=True)
class CrashLoop:
    """A worker slot's crash record: crashes in a row, and when its next start is due."""

    crashes: int = 0
    restart_at: float | None = None


def after_crash(
    policy: RestartPolicy, loop: CrashLoop, *, ran_seconds: float, now: float
) -> CrashLoop:
    """The record after a process that ran ``ran_seconds`` exited on its own at ``now``."""
    crashes = 1 if ran_seconds >= policy.stable_seconds else loop.crashes + 1
    return CrashLoop(crashes=crashes, restart_at=now + policy.delay(crashes))
