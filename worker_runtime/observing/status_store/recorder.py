"""The worker side of the status store: an observer that buffers, and a task that flushes.

The hot path only touches the in-memory buffer (no await, no I/O). A flush task writes the
buffer every ``flush_seconds`` (sooner when it fills up); when the database is unreachable
the batch goes back into the buffer and is retried with backoff, while jobs keep running.
The outage shows in health (component ``status_store``) and in metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import Completion, WorkerObserver, observer_failed
from worker_runtime.observing.health import ComponentHealth
from worker_runtime.observing.status_store.buffer import StatusBuffer
from worker_runtime.observing.status_store.completions import Record
from worker_runtime.observing.status_store.retention import Retention
from worker_runtime.observing.status_store.store import StatusStore
from worker_runtime.redis_io.reconnect import Backoff

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from worker_runtime.consuming.processor import Job
    from worker_runtime.consuming.worker import Worker

log = structlog.get_logger("shoal.status_store")

#: A flush starts early once this many jobs are buffered.
EARLY_FLUSH_RECORDS = 5000
#: How long `start` waits for the migration before leaving it to the flush loop.
START_MIGRATE_SECONDS = 5.0
#: A write this slow means the writer is starved of CPU (a busy pod): write at normal priority.
SLOW_WRITE_SECONDS = 1.0
#: How long `stop` keeps retrying the last writes before giving up (and saying so).
FINAL_FLUSH_SECONDS = 10.0
RESULT_SUMMARY_CHARS = 200


def summarize(result: Any) -> str | None:
    """A short, single-line summary of a job's result (never the whole thing)."""
    if result is None:
        return None
    if isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(result, default=str, separators=(",", ":"))
        except (TypeError, ValueError):
            text = repr(result)
    if len(text) > RESULT_SUMMARY_CHARS:
        text = text[: RESULT_SUMMARY_CHARS - 1] + "…"
    return text


def owner_of(data: Any, field: str) -> str | None:
    """The owner id from the payload: a dict key or a model attribute named ``field``.

    Reads the instance ``__dict__`` rather than ``getattr``: a pydantic model without the
    field would raise (and catch) an AttributeError per job, ~5 µs on the hot path.
    """
    if isinstance(data, dict):
        value = data.get(field)
    else:
        attrs = getattr(data, "__dict__", None)
        value = attrs.get(field) if attrs is not None else None
    return None if value is None else str(value)


def falling_behind(behind: bool, *, records: int, bound: int, last_write_seconds: float) -> bool:
    """Whether the next write should run at normal priority (the SQLite writer otherwise
    uses idle CPU only). Behind: the previous write was slow (or failed), or a quarter of the
    buffer's bound is waiting. Caught up: a fast write and under a tenth of the bound waiting
    (the gap keeps the writer from being restarted at every flush)."""
    if last_write_seconds >= SLOW_WRITE_SECONDS or records >= max(bound // 4, 1):
        return True
    if behind:
        return not (last_write_seconds < SLOW_WRITE_SECONDS / 4 and records < max(bound // 10, 1))
    return False


class StatusRecorder(WorkerObserver):
    """Observer + worker extension feeding a `StatusStore`."""

    def __init__(
        self,
        store: StatusStore,
        *,
        owner_field: str | None = "userId",
        dead_letters: bool = True,
        flush_seconds: float = 0.5,
        max_buffered: int = 100_000,
        retention: Retention | None = None,
    ) -> None:
        self.store = store
        self.retention = retention if retention is not None else Retention()
        self.pruned = 0
        self._last_prune_ms: int | None = None
        self.owner_field = owner_field
        self.persist_dead_letters = dead_letters
        self.flush_seconds = flush_seconds
        self.buffer = StatusBuffer(max_records=max_buffered)
        self.worker_id: str | None = None
        self.migrated = False
        self.ok = True
        self.last_error: str | None = None
        self.written = 0
        self.write_errors = 0
        self.behind = False
        self._last_write_seconds = 0.0
        self._dead_letter_queues: set[str] = set()
        self._worker: Worker | None = None
        self._marked: set[str] = set()  # running jobs already recorded as processing
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- hot path (no I/O, no await) -------------------------------------------------------

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        field = self.owner_field
        records: list[Record] = []
        for job, _, result in completions:
            started_ms = int(job.started_at * 1000)
            try:
                owner = owner_of(job.data, field) if field else None
                summary = None if result is None else summarize(result)
            except Exception:  # say a __str__ that raises: record the job without them
                observer_failed(self, "jobs_completed")
                owner = summary = None
            records.append((job.id, job.attempt, started_ms, owner, summary))
        self.buffer.completed_jobs(queue, records, int(time.time() * 1000))
        if self.buffer.completed_count >= EARLY_FLUSH_RECORDS:
            self._wake.set()

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
        owner = owner_of(job.data, self.owner_field) if self.owner_field else None
        status = {"retry": "pending", "dead": "dead"}.get(outcome, "failed")
        self._marked.discard(job.id)  # a retry's next attempt is a new 'processing'
        now_ms = int(time.time() * 1000)
        started_ms = int(job.started_at * 1000)
        self.buffer.finished(
            job.queue, job.id, status, job.attempt, started_ms, now_ms, owner, error, None
        )
        if outcome == "dead" and self.persist_dead_letters:
            self.buffer.dead_letter(
                (
                    job.queue,
                    job.id,
                    job.raw,
                    error,
                    error_type,
                    traceback,
                    job.attempt,
                    owner,
                    now_ms,
                )
            )

    def job_cancelled(self, job: Job[Any]) -> None:
        now_ms = int(time.time() * 1000)
        self.buffer.finished(
            job.queue, job.id, "failed", job.attempt, int(job.started_at * 1000), now_ms,
            None, "cancelled", None,
        )  # fmt: skip

    def job_released(self, job: Job[Any]) -> None:
        # Handed back unfinished: waiting again, no attempt charged.
        self.buffer.changed(
            job.queue, job.id, "pending", job.attempts_made, int(time.time() * 1000)
        )

    def jobs_stalled(self, queue: str, *, requeued: list[str], failed: list[str]) -> None:
        now_ms = int(time.time() * 1000)
        final = "dead" if queue in self._dead_letter_queues else "failed"
        for job_id in requeued:
            self.buffer.changed(queue, job_id, "pending", 0, now_ms, None, "stalled")
        for job_id in failed:
            self.buffer.changed(queue, job_id, final, 0, now_ms, None, "stalled too many times")

    # --- extension -------------------------------------------------------------------------

    def mark_running(self) -> None:
        """Record 'processing' for jobs running now that have not been recorded yet.

        Done here, once per flush, rather than in ``job_started``: a job that starts and
        finishes within one flush window then costs one buffer update instead of two, and
        the hot path does not pay for the start at all.
        """
        worker = self._worker
        if worker is None:
            return
        running: set[str] = set()
        for consumer in worker.consumers.values():
            for job, _task in list(consumer.running.values()):
                running.add(job.id)
                if job.id not in self._marked:
                    self.buffer.started(
                        job.queue, job.id, job.attempts_made, int(job.started_at * 1000)
                    )
        self._marked = running

    async def start(self, worker: Worker) -> None:
        self._worker = worker
        self.worker_id = worker.id
        self._dead_letter_queues = {
            name for name, reg in worker.registrations.items() if reg.config.dead_letter
        }
        try:
            # Bounded: the consumers start after this, and a database that hangs must not
            # hold jobs back (SQLite, the usual case, is ready in a fraction of a second).
            async with asyncio.timeout(START_MIGRATE_SECONDS):
                await self.store.migrate()
            self.migrated = True
        except Exception as exc:  # the database may be down at start: retried by the loop
            reraise_if_cancelling()
            self._failed("migrate", exc)
        self._task = asyncio.create_task(self._flush_loop(), name="shoal-status-store")

    async def stop(self, worker: Worker) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        deadline = time.monotonic() + FINAL_FLUSH_SECONDS
        backoff = Backoff(base=0.1, cap=1.0)
        while len(self.buffer) and time.monotonic() < deadline:
            if not await self.flush():
                await asyncio.sleep(
                    min(backoff.next_delay(), max(0.0, deadline - time.monotonic()))
                )
        if len(self.buffer):
            log.error(
                "status records not saved at shutdown",
                records=len(self.buffer),
                error=self.last_error,
            )
        await self.store.close()

    async def _flush_loop(self) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await self._wake.wait()
            self._wake.clear()
            ok = await self.flush()
            reraise_if_cancelling()  # a cancel swallowed inside a driver still stops us
            if ok:
                ok = await self.prune_if_due()
            if ok:
                backoff.reset()
            else:
                await asyncio.sleep(backoff.next_delay())

    async def flush(self) -> bool:
        """Write what is buffered; False (and everything kept) when the database failed."""
        if not self.migrated:
            try:
                await self.store.migrate()
            except Exception as exc:
                reraise_if_cancelling()
                self._failed("migrate", exc)
                return False
            self.migrated = True
        self.mark_running()
        batch = self.buffer.take()
        if not batch.records:
            return True
        self.behind = falling_behind(
            self.behind, records=batch.records, bound=self.buffer.max_records,
            last_write_seconds=self._last_write_seconds,
        )  # fmt: skip
        began = time.monotonic()
        try:
            await self.store.write(batch, worker_id=self.worker_id, behind=self.behind)
        except asyncio.CancelledError:
            # Stopping mid-write (`stop` cancels the flush task): the batch must not go with
            # the task. At worst it is written twice (upserts; a dead letter could repeat).
            self.buffer.restore(batch)
            raise
        except Exception as exc:  # any database error: keep the batch, retry later
            self.buffer.restore(batch)
            reraise_if_cancelling()
            # A timed-out write may be a starved writer: the retry runs at normal priority.
            self._last_write_seconds = max(time.monotonic() - began, SLOW_WRITE_SECONDS)
            self._failed("write", exc)
            return False
        self._last_write_seconds = time.monotonic() - began
        self.written += batch.records
        if not self.ok:
            log.info("status store recovered", buffered=len(self.buffer))
        self.ok = True
        self.last_error = None
        return True

    async def prune_if_due(self) -> bool:
        """Apply the retention rules when their interval has passed (after a successful
        flush, so a job's final row is never pruned before it is written); False on error."""
        now_ms = int(time.time() * 1000)
        if not self.migrated or not self.retention.due(self._last_prune_ms, now_ms):
            return True
        try:
            self.pruned += await self.store.prune(self.retention, now_ms=now_ms)
        except Exception as exc:
            reraise_if_cancelling()
            self._failed("prune", exc)
            return False
        self._last_prune_ms = now_ms
        return True

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.write_errors += 1
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self.ok:
            log.warning(
                "status store unreachable; buffering",
                operation=operation,
                error=message,
                buffered=len(self.buffer),
            )
        self.ok = False
        self.last_error = message

    # --- reporting (any thread) ------------------------------------------------------------

    def health_component(self) -> ComponentHealth:
        buffered, dropped = len(self.buffer), self.buffer.dropped
        if self.ok and not dropped:
            return ComponentHealth(name="status_store", ok=True, detail=f"{buffered} buffered")
        detail = f"{self.last_error or 'ok'}; {buffered} buffered, {dropped} dropped"
        return ComponentHealth(name="status_store", ok=False, detail=detail)

    def collect_metrics(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "status_store_up", "1 while the last status store write succeeded", value=self.ok
        )
        yield GaugeMetricFamily(
            "status_store_buffered_records",
            "Status changes waiting to be written",
            value=len(self.buffer),
        )
        yield CounterMetricFamily(
            "status_store_written_records", "Status rows written", value=self.written
        )
        yield CounterMetricFamily(
            "status_store_pruned_records",
            "Finished rows deleted by the retention rules",
            value=self.pruned,
        )
        yield CounterMetricFamily(
            "status_store_write_errors", "Failed status store writes", value=self.write_errors
        )
        yield CounterMetricFamily(
            "status_store_dropped_records",
            "Status changes dropped because the buffer was full",
            value=self.buffer.dropped,
        )
