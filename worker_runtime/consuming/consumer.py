"""One queue's consumer inside a worker: fetch in batches, run jobs, acknowledge in batches,
renew leases and reclaim jobs whose worker died."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import secrets
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.consuming.cancellation import reraise_if_cancelling
from worker_runtime.consuming.cron import run_cron

# Re-exported: the worker sizes its blocking connections' socket timeout from it.
from worker_runtime.consuming.idle_wait import IDLE_BLOCK_SECONDS as IDLE_BLOCK_SECONDS
from worker_runtime.consuming.idle_wait import IdleWait
from worker_runtime.consuming.leases import Lease, LeaseKeeping
from worker_runtime.consuming.observers import WorkerObserver, notify, observer_failed, takes
from worker_runtime.consuming.outcomes import OutcomeRecording
from worker_runtime.consuming.processor import Job, JobResult, Registration
from worker_runtime.consuming.slots import Slots
from worker_runtime.consuming.supervision import LoopSupervisor
from worker_runtime.consuming.undecodable import make_decodable, shown_id
from worker_runtime.core.codec import dumps
from worker_runtime.core.keys import QueueKeys
from worker_runtime.errors import NonRetryableError, PayloadValidationError
from worker_runtime.rate_limit import fetch_limit_args
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS
from worker_runtime.redis_io.reconnect import Backoff
from worker_runtime.redis_io.scripts import Scripts, call_undecoded

if TYPE_CHECKING:
    from worker_runtime.consuming.outcomes import Done


class JobTimeout(Exception):
    """The attempt ran longer than the queue's timeout and was cancelled."""


#: How long a cancelled processor gets to stop: at shutdown (after the grace period its task
#: is abandoned and its job handed back) and after its timeout (past timeout + this, its lease
#: is no longer renewed, so the job is reclaimed). See docs/runtime.md, "Misbehaving processors".
CANCEL_GRACE_SECONDS = 5.0


class QueueConsumer(LeaseKeeping, OutcomeRecording):
    def __init__(
        self,
        *,
        registration: Registration,
        concurrency: int,
        settings: WorkerSettings,
        redis: aioredis.Redis,
        blocking_redis: aioredis.Redis,
        slots: Slots,
        token: str,
        observers: list[WorkerObserver],
    ) -> None:
        self.reg = registration
        self.name = registration.queue
        self.config: QueueConfig = registration.config
        self.concurrency = concurrency
        self.settings = settings
        self.redis = redis
        self.blocking_redis = blocking_redis
        self.keys = QueueKeys(self.name, settings.key_prefix)
        self.scripts = Scripts(redis)
        self.slots = slots
        self.token = token
        # Every fetch call leases under a token of its own: the worker's id (who holds a lease
        # stays visible), a random part (two workers given the same id stay apart), a count.
        self._lease_prefix = f"{token}:{secrets.token_hex(3)}"
        self._fetch_calls = 0
        self.observers = observers
        self.running: dict[Lease, tuple[Job[Any], asyncio.Task[None]]] = {}
        self.processed = 0
        self.failed = 0
        self.fetched_once = False
        self.redis_ok = True
        self._wake = asyncio.Event()
        slots.subscribe(self._wake)
        self._stopping = False
        self._fetching = False
        self._acks: list[str] = []
        self._unacked: set[Lease] = set()
        self._ack_task: asyncio.Task[None] | None = None
        self._idle = IdleWait(blocking_redis, self.keys.marker)
        self._cancelling: set[Lease] = set()
        self._lost: set[Lease] = set()
        # Monotonic time after which a run's lease is no longer renewed (timeout + grace).
        self._renew_until: dict[Lease, float] = {}
        #: Tasks of processors that ignored cancellation at shutdown (their jobs handed back).
        self.abandoned: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._done: list[Done] = []
        #: Observers that take each completion in the job's own context (log lines).
        self._per_job_completed = [o for o in self.observers if takes(o, "job_completed")]
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()  # the worker's, not a job's
        k = self.keys
        self._events = self.config.events_max_len
        # Only what the plain path needs: fetch.lua and complete.lua derive the other keys
        # (same hash tag) when a feature needs them; limits are sent only when configured.
        self._fetch_keys = [k.wait, k.active, k.delayed, k.marker, k.job_prefix]
        limited = self.config.rate_limit or self.config.group_rate_limit
        self._fetch_limits = (
            fetch_limit_args(self.config.rate_limit, self.config.group_rate_limit)
            if limited or not self.config.dead_letter
            else []
        )
        if not self.config.dead_letter:
            self._fetch_limits.append(0)  # malformed jobs go to the failed set
        self.loops = LoopSupervisor(on_crash=self._loop_crashed)
        self._complete_keys = [k.active, k.completed, k.stats, k.job_prefix]
        self._fail_keys = [
            k.active, k.wait, k.delayed, k.dead, k.failed, k.stats, k.marker, k.job_prefix,
            k.prioritized, k.events, k.flows, k.child_failures_prefix,
        ]  # fmt: skip

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        spawn = self.loops.spawn
        self._tasks = [
            spawn("fetch", self._fetch_loop, task_name=f"shoal-fetch-{self.name}"),
            spawn("lease", self._lease_loop, task_name=f"shoal-lease-{self.name}"),
            spawn("reclaim", self._reclaim_loop, task_name=f"shoal-reclaim-{self.name}"),
        ]
        if self.config.cron:
            jobs = self.config.cron
            cron = lambda: run_cron(redis=self.redis, keys=self.keys, jobs=jobs)  # noqa: E731
            self._tasks.append(spawn("cron", cron, task_name=f"shoal-cron-{self.name}"))

    def stop_fetching(self) -> None:
        """Stop taking new jobs at once (interrupts an idle block)."""
        self._stopping = True
        self._wake.set()
        self._idle.cancel()

    async def drain(self, deadline: float) -> None:
        """Wait for running jobs until ``deadline`` (monotonic), then hand the rest back."""
        fetch_task = self._tasks[0] if self._tasks else None
        if fetch_task is not None:
            # A fetch in flight is awaited (its jobs then run); a backoff sleep is cut short.
            while not fetch_task.done() and self._fetching and time.monotonic() < deadline:
                await asyncio.wait([fetch_task], timeout=0.05)
            fetch_task.cancel()
            await asyncio.gather(fetch_task, return_exceptions=True)
        pending = [task for _, task in self.running.values()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        leftovers = list(self.running.values())
        for _, task in leftovers:
            task.cancel()
        if leftovers:
            # Bounded: a processor that ignores the cancellation is abandoned, its job handed
            # back all the same (its late outcome is refused: the lease is gone).
            _, stubborn = await asyncio.wait(
                [t for _, t in leftovers], timeout=CANCEL_GRACE_SECONDS
            )
            self.abandoned |= stubborn
            for job, task in leftovers:
                if task in stubborn:
                    _log().error("processor ignored cancellation at shutdown; job handed back",
                                 queue=self.name, job_id=job.id)  # fmt: skip
            # A run that caught the cancel and finished has its outcome recorded (or being
            # acked): handing it back too would run it again.
            unfinished = [job for job, task in leftovers if not _finished(task)]
            # If Redis is down, their leases lapse and a live worker reclaims them.
            with contextlib.suppress(*WORKER_RETRY_ERRORS):
                await self._release(unfinished)
        await self._flush_acks_until(deadline + 5.0)
        for task in self._tasks:
            task.cancel()
        # Bounded: stop() must return even if a library swallowed a cancellation.
        await asyncio.wait(self._tasks, timeout=5.0)

    @property
    def active(self) -> int:
        return len(self.running)

    # --- fetching --------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        backoff = Backoff()
        token = ""
        while not self._stopping:
            want = min(
                self.concurrency - len(self.running),
                self.slots.available,
                self.settings.fetch_batch,
            )
            if want <= 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.slots.take(want)
            self._fetching = True
            if not token:
                self._fetch_calls += 1
                token = f"{self._lease_prefix}.{self._fetch_calls}"
            try:
                reply = await call_undecoded(
                    self.scripts.fetch,
                    self.redis,
                    keys=self._fetch_keys,
                    args=[self.settings.lease_ms, want, token, *self._fetch_limits],
                )
            except WORKER_RETRY_ERRORS as exc:
                self.slots.give(want)  # first: a stop surfacing here must not keep them
                reraise_if_cancelling()  # a cancel can surface as a connection error
                self._redis_failed("fetch", exc)
                # The token is kept: if the call ran and only its reply was lost, the retry
                # gets the jobs it leased (fetch.lua), instead of leaving them to stall.
                await backoff.sleep()
                continue
            except BaseException:
                self.slots.give(want)  # the loop restarts (or stops) without them
                raise
            finally:
                self._fetching = False
            backoff.reset()
            self._redis_succeeded()
            self.fetched_once = True
            got = (len(reply) - 1) // 4
            if got < want:
                self.slots.give(want - got)
            elif got > want:  # a retried call's jobs, leased when more slots were free
                self.slots.take(got - want)
            for i in range(1, len(reply), 4):
                try:
                    job_id, raw = reply[i].decode(), reply[i + 1].decode()
                except UnicodeDecodeError:
                    self._bury_undecodable(reply[i], reply[i + 1], token)
                    continue
                self._start_job(job_id, raw, int(reply[i + 2]), int(reply[i + 3]), token)
            token = ""
            if got == 0 and not self._stopping:
                await self._block_until_work(int(reply[0]))

    def _bury_undecodable(self, raw_id: bytes, raw: bytes, token: str) -> None:
        """A leased job whose id or payload is not UTF-8: to the dead-letter store (or the
        failed set) with the reason, its bad bytes kept as \\xNN (see `undecodable`)."""
        job_id = shown_id(raw_id)
        what = "payload" if job_id.encode() == raw_id else "id"
        job = self._new_job(job_id, "", 0, 0, token)
        message = f"malformed job: {what} is not UTF-8"

        async def bury() -> None:
            try:
                fix = partial(make_decodable, self.scripts, self.keys, raw_id=raw_id, raw=raw,
                              token=token)  # fmt: skip
                # False (moved already by a first copy whose reply was lost, or the lease is
                # gone): the failure below is fenced by the lease all the same.
                await self._with_retry("fail", fix)
                await self._fail(job, time.perf_counter(), message,
                                 PayloadValidationError(message), retryable=False)  # fmt: skip
            except Exception as exc:  # reported; the lease decides
                self._gave_up("fail", exc)
            finally:
                # However it ended (a renewal may report the lease lost and cancel it before
                # the key is renamed): its slot is given back, its lease no longer held.
                self._finish(job)
                self._lost.discard(job.lease)
                self._cancelling.discard(job.lease)

        self.running[job.lease] = (job, asyncio.create_task(bury()))

    async def _block_until_work(self, wait_ms: int) -> None:
        """Block until woken, or for ``wait_ms`` (fetch's next due job or rate window)."""
        try:
            error = await self._idle.wait(wait_ms)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            return
        if error is not None:
            self._redis_failed("wait", error)
            await asyncio.sleep(0.2)

    def _start_job(
        self, job_id: str, raw: str, attempts_made: int, stalls: int, token: str
    ) -> None:
        job = self._new_job(job_id, raw, attempts_made, stalls, token)
        task = asyncio.create_task(self._run(job))
        self.running[job.lease] = (job, task)
        timeout = self.config.timeout_seconds
        if timeout is not None:
            self._renew_until[job.lease] = time.monotonic() + timeout + CANCEL_GRACE_SECONDS

    def _new_job(
        self, job_id: str, raw: str, attempts_made: int, stalls: int, token: str
    ) -> Job[Any]:
        return Job(
            id=job_id,
            queue=self.name,
            data=None,
            attempt=attempts_made + 1,
            attempts_made=attempts_made,
            stalls=stalls,
            raw=raw,
            started_at=time.time(),
            _consumer=self,
            _lease=token,
        )

    def lease_ids(self) -> set[Lease]:
        """The leases to renew now: running and unacknowledged runs, except a run that
        outlived its timeout plus CANCEL_GRACE_SECONDS (it ignored its cancellation): its
        lease lapses and a worker reclaims the job, as if this one had died."""
        held = {*self.running, *self._unacked}
        if not self._renew_until:
            return held
        now = time.monotonic()
        overdue = {lease for lease, until in self._renew_until.items() if until <= now}
        if not overdue:
            return held
        for lease in overdue:
            if self._renew_until[lease] > 0:
                self._renew_until[lease] = 0.0  # logged once
                _log().error("processor ignored its timeout; its lease is no longer renewed",
                             queue=self.name, job_id=lease[0])  # fmt: skip
        return {lease for lease in held if lease not in overdue or lease in self._unacked}

    # --- running ---------------------------------------------------------------------------

    async def _run(self, job: Job[Any]) -> None:
        started = time.perf_counter()
        # The per-job hooks are called inline, not through `notify` (a getattr and argument
        # packing per call): same isolation, less cost on the hot path.
        for obs in self.observers:
            try:
                obs.job_started(job)
            except Exception:
                observer_failed(obs, "job_started")
        try:
            model = self.reg.payload_model
            if model is not None:
                job.data = model.model_validate_json(job.raw)
            else:
                try:
                    job.data = json.loads(job.raw)
                except ValueError as exc:
                    # Trying again cannot make it JSON: fail for good, with the reason.
                    raise PayloadValidationError(f"invalid payload: {exc}") from exc
            timeout = self.config.timeout_seconds
            if timeout is None:
                result = await self.reg.handler(job)
            else:
                try:
                    async with asyncio.timeout(timeout) as scope:
                        result = await self.reg.handler(job)
                except TimeoutError as exc:
                    raise JobTimeout(f"timed out after {timeout:g} s") from exc
                if scope.expired():  # it swallowed the cancellation and returned late
                    raise JobTimeout(f"timed out after {timeout:g} s")
        except asyncio.CancelledError as exc:
            lease = job.lease
            task = asyncio.current_task()
            ours = lease in self._cancelling or lease in self._lost
            if not ours and task is not None and not task.cancelling():
                # Raised by the processor itself, not a cancellation: a failed attempt.
                await self._fail(job, started, _raised(exc), exc, retryable=True)
                return
            self._finish(job)
            if ours:
                # Cancelled through the queue (cancel.lua recorded it; not retried), or the
                # lease was lost (the job is another run's now): nothing to record here.
                if task is not None:
                    task.uncancel()
                self._lease_lost(job)
                return
            # Cancelled by drain(): the job is handed back, not failed.
            raise
        except ValidationError as exc:
            await self._fail(job, started, f"invalid payload: {exc}", exc, retryable=False)
        except JobTimeout as exc:
            await self._fail(job, started, str(exc), exc, retryable=True)
        except NonRetryableError as exc:
            await self._fail(job, started, _message(exc), exc, retryable=False)
        except Exception as exc:
            await self._fail(job, started, _message(exc), exc, retryable=True)
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt, GeneratorExit or another BaseException from the
            # processor: a failed attempt, not the worker's end (a job calling sys.exit()
            # would otherwise crash every worker that takes it).
            await self._fail(job, started, _raised(exc), exc, retryable=True)
        else:
            if isinstance(result, JobResult):
                if not result.success:
                    await self._fail(job, started, result.error or "failed", None, retryable=True)
                    return
                result = result.data
            if self._abandoned(job):
                return
            try:
                encoded = "" if result is None else dumps(result)
            except Exception as exc:  # TypeError, ValueError, RecursionError, a serializer's own
                message = f"result is not JSON serializable: {exc}"
                await self._fail(job, started, message, exc, retryable=False)
                return
            self._finish(job)
            if self._lease_lost(job):
                return
            duration = time.perf_counter() - started
            # Observers hear of it once Redis has acknowledged it (never of a refused ack).
            context = contextvars.copy_context() if self._per_job_completed else None
            self._ack(job, encoded, (job, duration, result, context))

    def _abandoned(self, job: Job[Any]) -> bool:
        """A run abandoned at shutdown ended after all: its job was handed back and the
        connections may be closed, so its outcome is dropped (Redis would refuse it)."""
        if asyncio.current_task() not in self.abandoned:
            return False
        self._finish(job)
        return True

    def _finish(self, job: Job[Any]) -> None:
        """Free the run's slot: once, however often it is called."""
        self._renew_until.pop(job.lease, None)
        if self.running.pop(job.lease, None) is not None:
            self.slots.give(1)

    def _lease_lost(self, job: Job[Any]) -> bool:
        """True (and observers told) if the run ended after its lease was found lost: another
        run of the job owns its outcome, or it was cancelled through the queue (cancel.lua
        recorded that) and the processor swallowed the cancellation; this run records nothing."""
        lease = job.lease
        if self._lost and lease in self._lost:
            self._lost.discard(lease)
            notify(self.observers, "job_lease_lost", job)
            return True
        if self._cancelling and lease in self._cancelling:
            self._cancelling.discard(lease)
            notify(self.observers, "job_cancelled", job)
            return True
        return False

    async def report_progress(self, job: Job[Any], value: str) -> None:
        # Progress is informative: a Redis hiccup must not fail the job reporting it.
        try:
            await self.scripts.progress(
                keys=[self.keys.job(job.id), self.keys.events],
                args=[job._lease, value, self._events, job.id],
            )
        except WORKER_RETRY_ERRORS as exc:
            reraise_if_cancelling()  # a cancel can surface as a connection error
            self._redis_failed("progress", exc)


def _finished(task: asyncio.Task[None]) -> bool:
    """The run ended with its outcome handed to Redis (not cancelled, not still running)."""
    return task.done() and not task.cancelled() and task.exception() is None


def _message(exc: BaseException) -> str:
    """``str(exc)``, or the type's name when that is empty or raises (user code's ``__str__``
    must not take the job's task down with its slot and lease)."""
    try:
        detail = str(exc)
    except Exception:
        return f"{type(exc).__name__} (its message could not be read)"
    return detail or type(exc).__name__


def _raised(exc: BaseException) -> str:
    """The error message of a BaseException a processor raised (names the type)."""
    detail = _message(exc)
    name = type(exc).__name__
    return f"processor raised {name}" + (f": {detail}" if detail != name else "")


def _log() -> Any:
    import structlog  # here: the hot path never needs it

    return structlog.get_logger("shoal.worker")
