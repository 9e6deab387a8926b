"""Recording a run's outcome in Redis: a failure (retry, dead letter or final failure, by the
retry policy) through fail.lua, and acknowledgements of completed runs, batched through
complete.lua. Each is fenced by the run's lease token: Redis refuses the outcome of a run whose
lease was lost, and observers hear only of outcomes Redis recorded.

Mixed into `QueueConsumer`, which provides the attributes and the Redis-health calls below.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
import traceback
from functools import partial
from typing import TYPE_CHECKING, Any

from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.observers import notify, observer_failed
from worker_runtime.consuming.redis_health import RedisHealth
from worker_runtime.core.backoff import retry_delay_ms, should_retry
from worker_runtime.core.codec import dumps, printable
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS, is_script_error
from worker_runtime.redis_io.reconnect import Backoff

if TYPE_CHECKING:
    from worker_runtime.config import QueueConfig
    from worker_runtime.consuming.leases import Lease
    from worker_runtime.consuming.observers import WorkerObserver
    from worker_runtime.consuming.processor import Job
    from worker_runtime.redis_io.scripts import Scripts

    #: A completed run awaiting its ack: job, seconds, result, and the job's context (kept
    #: only when an observer takes `job_completed`).
    Done = tuple[Job[Any], float, Any, contextvars.Context | None]


class OutcomeRecording(RedisHealth):
    """Failures and acknowledgements of a consumer's runs."""

    config: QueueConfig
    scripts: Scripts
    observers: list[WorkerObserver]
    token: str
    failed: int
    _events: int
    _acks: list[str]
    _unacked: set[Lease]
    _ack_task: asyncio.Task[None] | None
    _fail_keys: list[str]
    _complete_keys: list[str]
    _done: list[Done]
    _per_job_completed: list[WorkerObserver]
    _loop: asyncio.AbstractEventLoop
    _context: contextvars.Context
    name: str
    processed: int

    def _abandoned(self, job: Job[Any]) -> bool:
        raise NotImplementedError

    def _lease_lost(self, job: Job[Any]) -> bool:
        raise NotImplementedError

    def _finish(self, job: Job[Any]) -> None:
        raise NotImplementedError

    async def _fail(
        self,
        job: Job[Any],
        started: float,
        message: str,
        exc: BaseException | None,
        *,
        retryable: bool,
    ) -> None:
        if self._abandoned(job):
            return
        if self._lease_lost(job):
            self._finish(job)
            return
        duration = time.perf_counter() - started
        message = printable(message)
        tb = printable("".join(traceback.format_exception(exc))) if exc is not None else ""
        error_type = type(exc).__name__ if exc is not None else "JobResultFailure"
        if should_retry(self.config.retry, attempts_made=job.attempt, retryable=retryable):
            outcome = "retry"
            delay = retry_delay_ms(
                self.config.retry.backoff, attempts_made=job.attempt, random=random.random
            )
        else:
            outcome = "dead" if self.config.dead_letter else "fail"
            delay = 0
        record = dumps(
            {
                "attempt": job.attempt,
                "error": message,
                "error_type": error_type,
                "started_at": round(job.started_at * 1000),
                "worker": self.token,
            }
        )
        args = [job.id, job._lease, outcome, delay, message, tb, record, self._events]
        # Keep the slot until the failure is recorded, so a retry storm cannot outrun Redis.
        self._unacked.add(job.lease)
        try:
            applied = await self._with_retry(
                "fail", lambda: self.scripts.fail(self._fail_keys, args)
            )
        except Exception as exc:  # a script error: reported, never retried
            # Not recorded: the lease lapses and the job is reclaimed (and runs again).
            self._gave_up("fail", exc)
            applied = 0
        finally:
            self._unacked.discard(job.lease)
            self._finish(job)
        if not int(applied):
            # Redis refused it: the lease was lost (reclaimed and finished elsewhere, cancelled,
            # removed). Observers hear only of outcomes that were recorded.
            return
        self.failed += 1
        notify(
            self.observers,
            "job_failed",
            job,
            duration=duration,
            error=message,
            error_type=error_type,
            traceback=tb,
            outcome=outcome,
            retry_delay_ms=delay,
        )

    # --- acknowledging ---------------------------------------------------------------------

    def _ack(self, job: Job[Any], result: str, done: Done) -> None:
        lease = job.lease
        self._acks += (*lease, result)
        self._done.append(done)
        self._unacked.add(lease)
        if self._ack_task is None:
            self._start_flush()

    def _start_flush(self) -> None:
        # In the worker's context, not a job's or stop()'s caller (log fields must not leak).
        self._ack_task = self._loop.create_task(self._flush_acks(), context=self._context)

    async def _flush_acks(self) -> None:
        # One flush in flight at a time: whatever completes meanwhile rides the next batch.
        backoff = Backoff()
        try:
            while self._acks:
                batch, self._acks = self._acks, []
                done, self._done = self._done, []
                try:
                    refused, cancelled = await self._complete(batch)
                except WORKER_RETRY_ERRORS as exc:
                    reraise_if_cancelling()  # a cancel can surface as a connection error
                    if is_script_error(exc):
                        # The same batch would fail again: ack one by one instead.
                        self._redis_failed("complete", exc)
                        await self._complete_singly(batch, done)
                        continue
                    self._acks[:0] = batch  # keep order; nothing is dropped
                    self._done[:0] = done
                    self._redis_failed("complete", exc)
                    await backoff.sleep()
                    continue
                except Exception as exc:  # a bug must not wedge every ack
                    self._gave_up("complete", exc)
                    await self._complete_singly(batch, done)
                    continue
                backoff.reset()
                self._redis_succeeded()
                self._unacked.difference_update(zip(batch[0::3], batch[1::3], strict=True))
                self._completed(done, refused, cancelled)
        finally:
            self._ack_task = None

    async def _complete(self, batch: list[str]) -> tuple[list[int], list[int]]:
        """Ack ``batch``; the positions of the runs Redis refused (their lease was lost), and
        of those the ones cancelled through the queue meanwhile."""
        args = [self.config.keep_completed, self._events, *batch]
        refused, cancelled = await self.scripts.complete(keys=self._complete_keys, args=args)
        return refused, cancelled

    async def _complete_singly(self, batch: list[str], done: list[Done]) -> None:
        """Ack a batch the script refused one job at a time. A job whose ack still fails is
        given up: its lease lapses and it is reclaimed and runs again (at least once)."""
        refused: list[int] = []
        cancelled: list[int] = []
        for k, i in enumerate(range(0, len(batch), 3)):
            try:
                one = partial(self._complete, batch[i : i + 3])
                no, gone = await self._with_retry("complete", one)
                if no:
                    refused.append(k)
                if gone:
                    cancelled.append(k)
            except Exception as exc:  # reported; the lease decides
                self._gave_up("complete", exc)
                refused.append(k)
            self._unacked.discard((batch[i], batch[i + 1]))
        self._completed(done, refused, cancelled)

    def _completed(self, done: list[Done], refused: list[int], cancelled: list[int]) -> None:
        """Tell observers of the runs Redis acknowledged: each in its job's own context (log
        fields the processor bound), then all as one batch. A refused run ends as cancelled
        (through the queue) or as a lost lease: every run started gets one closing hook."""
        if refused:
            skip = set(refused)
            for k in refused:
                hook = "job_cancelled" if k in cancelled else "job_lease_lost"
                notify(self.observers, hook, done[k][0])
            done = [d for k, d in enumerate(done) if k not in skip]
            if not done:
                return
        self.processed += len(done)
        for obs in self._per_job_completed:
            for job, duration, result, context in done:
                try:
                    if context is None:
                        obs.job_completed(job, duration=duration, result=result)
                    else:
                        context.run(obs.job_completed, job, duration=duration, result=result)
                except Exception:
                    observer_failed(obs, "job_completed")
        if not self.observers:
            return  # a plain worker: no batch to build on the hot path
        batch = [(job, duration, result) for job, duration, result, _ in done]
        for obs in self.observers:
            try:
                obs.jobs_completed(self.name, batch)
            except Exception:
                observer_failed(obs, "jobs_completed")

    async def _flush_acks_until(self, deadline: float) -> None:
        while (self._acks or self._ack_task) and time.monotonic() < deadline:
            if self._ack_task is None:
                self._start_flush()
            assert self._ack_task is not None
            await asyncio.wait([self._ack_task], timeout=max(0.0, deadline - time.monotonic()))
