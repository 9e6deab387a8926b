"""A consumer's view of Redis' health: state changes retried through an outage with capped
backoff, and what observers hear (outage, recovery, a script error, a loop that crashed). A
script error is Redis answering, not an outage: it is reported as what it is, never retried.

The base of the consumer's mixins (`LeaseKeeping`, `OutcomeRecording`) and of `QueueConsumer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import notify
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS, is_script_error
from worker_runtime.redis_io.reconnect import Backoff

if TYPE_CHECKING:
    from worker_runtime.consuming.observers import WorkerObserver


class RedisHealth:
    name: str
    observers: list[WorkerObserver]
    redis_ok: bool

    async def _with_retry(self, operation: str, call: Any, *, attempts: int | None = None) -> Any:
        """Retry a state change through a Redis outage (capped backoff); None = forever."""
        backoff = Backoff()
        tries = 0
        while True:
            try:
                result = await call()
            except WORKER_RETRY_ERRORS as exc:
                reraise_if_cancelling()  # a cancel can surface as a connection error
                tries += 1
                self._redis_failed(operation, exc)
                if (attempts is not None and tries >= attempts) or is_script_error(exc):
                    raise
                await backoff.sleep()
            else:
                self._redis_succeeded()
                return result

    def _redis_failed(self, operation: str, exc: BaseException) -> None:
        if is_script_error(exc):
            # Redis answered: not an outage (health stays green for it, the log says what).
            notify(self.observers, "script_error", self.name, operation=operation, error=exc)
            return
        self.redis_ok = False
        notify(self.observers, "redis_error", self.name, operation=operation, error=exc)

    def _gave_up(self, operation: str, exc: BaseException) -> None:
        """An ack or failure record given up (its job's lease decides what happens next)."""
        if not is_script_error(exc):  # (a script error was reported as one already)
            self._loop_crashed(operation, exc, 0.0)

    def _loop_crashed(self, loop: str, exc: BaseException, restart_in: float) -> None:
        notify(self.observers, "loop_crashed", self.name, loop=loop, error=exc,
               restart_in=restart_in)  # fmt: skip

    def _redis_succeeded(self) -> None:
        if not self.redis_ok:
            self.redis_ok = True
            notify(self.observers, "redis_recovered", self.name)
