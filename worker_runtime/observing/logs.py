"""Structured logs (structlog): JSON lines in production, a readable console on a TTY.

`configure_logging` sets up structlog and routes the standard library's loggers (alembic,
asyncio, httpx, ...) through the same renderer, so a pod's output is uniformly one JSON object
per line. `JobLogObserver` writes one line per finished job attempt with job id, queue,
attempt and processing time; payloads only when asked (``LOG_JOB_PAYLOADS``), since they
often hold personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

from worker_runtime.consuming.observers import WorkerObserver

if TYPE_CHECKING:
    from worker_runtime.consuming.processor import Job

LogFormat = Literal["auto", "json", "console"]


class InvalidLogSetting(ValueError):
    """LOG_LEVEL or LOG_FORMAT has a value we do not know."""


def level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise InvalidLogSetting(
            f"LOG_LEVEL: unknown level {level!r} (use debug, info, warning, error or critical)"
        )
    return number


def use_json(log_format: LogFormat, stream: TextIO) -> bool:
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (isatty is not None and isatty())
    return log_format == "json"


def configure_logging(
    *, log_format: LogFormat = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger (call once, at process start)."""
    stream = stream if stream is not None else sys.stdout
    number = level_number(level)
    as_json = use_json(log_format, stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    # Tracebacks never carry local variables: frames hold tokens, passwords and payloads.
    if as_json:
        renderer = structlog.processors.JSONRenderer()
        shared.append(
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        )
    else:
        # Not the default formatter: Rich's shows every frame's local variables.
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)


class JobLogObserver(WorkerObserver):
    """One line per finished attempt; Redis outages logged once per queue until recovered."""

    def __init__(self, *, worker_id: str | None = None, log_payloads: bool = False) -> None:
        self.log: Any = structlog.get_logger("shoal.worker")
        if worker_id is not None:
            self.bind_worker(worker_id)
        self.log_payloads = log_payloads
        self._redis_down: dict[str, int] = {}
        # Read once (configure logging first): at LOG_LEVEL=warning a completed job then
        # costs one attribute test instead of building a log call that is thrown away.
        is_enabled_for = getattr(self.log, "is_enabled_for", None)
        self._info = is_enabled_for(logging.INFO) if is_enabled_for is not None else True

    def bind_worker(self, worker_id: str) -> None:
        """Every line from now on carries ``worker_id``."""
        self.log = self.log.bind(worker_id=worker_id)

    def job_started(self, job: Job[Any]) -> None:
        self.log.debug("job started", job_id=job.id, queue=job.queue, attempt=job.attempt)

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        if not self._info:
            return
        self.log.info(
            "job completed",
            job_id=job.id,
            queue=job.queue,
            attempt=job.attempt,
            processing_time_ms=round(duration * 1000, 3),
            **({"payload": job.raw} if self.log_payloads else {}),
        )

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
        fields: dict[str, Any] = {
            "job_id": job.id,
            "queue": job.queue,
            "attempt": job.attempt,
            "processing_time_ms": round(duration * 1000, 3),
            "error": error,
            "error_type": error_type,
            "outcome": outcome,
        }
        if self.log_payloads:
            fields["payload"] = job.raw
        if outcome == "retry":
            self.log.warning("job failed, will retry", retry_delay_ms=retry_delay_ms, **fields)
        elif outcome == "dead":
            self.log.error("job moved to dead letter", traceback=traceback, **fields)
        else:
            self.log.error("job failed", traceback=traceback, **fields)

    def job_cancelled(self, job: Job[Any]) -> None:
        self.log.warning("job cancelled", job_id=job.id, queue=job.queue, attempt=job.attempt)

    def job_released(self, job: Job[Any]) -> None:
        self.log.info("job handed back at shutdown", job_id=job.id, queue=job.queue)

    def job_lease_lost(self, job: Job[Any]) -> None:
        self.log.warning(
            "lease lost; run stopped, its outcome not recorded", job_id=job.id, queue=job.queue
        )

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        self.log.warning("stalled jobs reclaimed", queue=queue, requeued=requeued, failed=failed)

    def redis_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        seen = self._redis_down.get(queue)
        if seen is None:
            self.log.warning(
                "Redis unreachable; retrying",
                queue=queue,
                operation=operation,
                error=f"{type(error).__name__}: {error}",
            )
        self._redis_down[queue] = (seen or 0) + 1

    def script_error(self, queue: str, *, operation: str, error: BaseException) -> None:
        self.log.error(
            "Lua script failed (Redis is up; not retried as an outage)",
            queue=queue,
            operation=operation,
            error=f"{type(error).__name__}: {error}",
        )

    def loop_crashed(
        self, queue: str, *, loop: str, error: BaseException, restart_in: float
    ) -> None:
        self.log.error(
            "worker loop crashed; restarting" if restart_in else "worker operation failed",
            queue=queue,
            loop=loop,
            restart_in_seconds=round(restart_in, 2),
            error=f"{type(error).__name__}: {error}",
            exc_info=error,
        )

    def redis_recovered(self, queue: str) -> None:
        errors = self._redis_down.pop(queue, 0)
        self.log.info("Redis reachable again", queue=queue, failed_calls=errors)
