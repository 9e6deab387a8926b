"""Hooks the worker calls on job lifecycle events: metrics, logs, status store, alerts.

Observers are called synchronously on the hot path: they must be cheap and must not raise
(a raising observer is logged and ignored, never allowed to fail a job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker_runtime.processor import Job


class WorkerObserver:
    """No-op base; override what you need."""

    def job_started(self, job: Job[Any]) -> None:
        pass

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        pass

    def job_failed(
        self,
        job: Job[Any],
        *,
        duration: float,
        error: str,
        error_type: str,
        traceback: str,
        outcome: str,
        retry_delay_ms: int,
    ) -> None:
        """``outcome``: 'retry', 'dead' (dead-lettered) or 'fail' (failed, no dead-letter)."""

    def job_released(self, job: Job[Any]) -> None:
        """Handed back unfinished at shutdown (no attempt charged)."""

    def job_cancelled(self, job: Job[Any]) -> None:
        """Stopped while running because it was cancelled through the queue (not retried)."""

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        pass

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        pass

    def redis_recovered(self, queue: str) -> None:
        pass
