"""Hooks the worker calls on job lifecycle events: metrics, logs, status store, alerts.

Observers are called synchronously on the hot path: they must be cheap and should not raise
(a raising observer is logged and ignored, never allowed to fail a job: see `notify`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

_failures: Counter[tuple[int, str]] = Counter()

if TYPE_CHECKING:
    from worker_runtime.consuming.processor import Job

#: A completed job: the job, its run time in seconds, and what the processor returned.
Completion = tuple["Job[Any]", float, Any]


class WorkerObserver:
    """No-op base; override what you need."""

    def job_started(self, job: Job[Any]) -> None:
        pass

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        """Called in the job's own task (its context variables, e.g. log fields the processor
        bound, are visible) right after it completed."""

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        """The jobs of ``queue`` that completed in one pass of the event loop, in order, as
        ``(job, seconds, result)``: for work that is cheaper per batch (metrics, the status
        store). Called outside the jobs' tasks. An observer implements this, `job_completed`,
        or both (then it gets both calls)."""

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

    def job_lease_lost(self, job: Job[Any]) -> None:
        """Stopped (or finished) after its lease was found lost: reclaimed because this
        worker stopped renewing (its event loop stalled, Redis was unreachable from it), or
        the job was removed. Another run of it may hold the job now; nothing is recorded."""

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        pass

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        pass

    def redis_recovered(self, queue: str) -> None:
        pass

    def script_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        """A Lua script failed while it ran (Redis is up): not retried as an outage."""

    def loop_crashed(
        self, queue: str, *, loop: str, error: BaseException, restart_in: float
    ) -> None:
        """A background loop (fetch, lease, reclaim, cron) raised; it restarts in
        ``restart_in`` seconds and readiness is red until then. ``restart_in`` 0: an ack or
        a failure record ('complete', 'fail') raised and was given up; the job's lease decides
        (it is reclaimed and runs again)."""


def takes(observer: WorkerObserver, hook: str) -> bool:
    """True if ``observer`` implements ``hook`` (not the base class's no-op): hooks nobody
    takes cost nothing to skip (e.g. keeping each job's context for `job_completed`)."""
    method = getattr(observer, hook)
    return getattr(method, "__func__", method) is not getattr(WorkerObserver, hook)


def notify(observers: Iterable[WorkerObserver], hook: str, *args: Any, **kwargs: Any) -> None:
    """Call ``hook`` on every observer; one that raises is logged, the others still run."""
    for observer in observers:
        try:
            getattr(observer, hook)(*args, **kwargs)
        except Exception:
            observer_failed(observer, hook)


def observer_failed(observer: object, hook: str) -> None:
    """Log an observer's exception (call from its ``except``): the first one per observer and
    hook with its traceback, then every 1,000th, so a broken observer cannot flood the logs."""
    key = (id(observer), hook)
    _failures[key] += 1
    count = _failures[key]
    if count == 1 or count % 1000 == 0:
        import structlog  # here: a worker whose observers never fail does not load it

        structlog.get_logger("shoal.worker").exception(
            "observer failed; the job is unaffected",
            observer=type(observer).__name__,
            hook=hook,
            failures=count,
        )
