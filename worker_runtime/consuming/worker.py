"""The Worker: runs processors for several queues with per-queue concurrency and a shared cap."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.consuming.consumer import QueueConsumer
from worker_runtime.consuming.cron import add_cron_job
from worker_runtime.consuming.observers import WorkerObserver
from worker_runtime.consuming.processor import (
    ProcessFn,
    Processor,
    Registration,
    payload_model_of_function,
)
from worker_runtime.consuming.slots import Slots
from worker_runtime.core.keys import validate_queue_name
from worker_runtime.observing.health import WorkerHealth, health_of, health_report
from worker_runtime.redis_io.connection import WORKER_RETRY_ERRORS, connect, ensure_ready
from worker_runtime.redis_io.redis_checks import redis_config_warnings


class WorkerExtension(Protocol):
    """Something that runs beside the consumers: heartbeat, HTTP probes, status store, ...

    ``start`` runs after the consumers started; ``stop`` after they drained (so an extension
    sees every job's final event) and before connections close.
    """

    async def start(self, worker: Worker) -> None: ...

    async def stop(self, worker: Worker) -> None: ...


def new_worker_id() -> str:
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Subscribes to queues and runs their processors.

    >>> worker = Worker(redis_url="redis://localhost:6379/0", concurrency=10)
    >>> worker.register(ResizeImages())                # a Processor subclass instance
    >>> @worker.processor("emails", concurrency=20)    # or a plain async function
    ... async def send(job: Job[Email]) -> None: ...
    >>> await worker.run()                             # until SIGTERM/SIGINT, then drains
    """

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        settings: WorkerSettings | None = None,
        concurrency: int | None = None,
        max_jobs_per_worker: int | None = None,
        worker_id: str | None = None,
        observers: list[WorkerObserver] | None = None,
        extensions: list[WorkerExtension] | None = None,
    ) -> None:
        settings = settings or WorkerSettings()
        updates: dict[str, Any] = {}
        if redis_url is not None:
            updates["redis_url"] = redis_url
        if concurrency is not None:
            updates["concurrency"] = concurrency
        if max_jobs_per_worker is not None:
            updates["max_jobs_per_worker"] = max_jobs_per_worker
        self.settings = settings.model_copy(update=updates)
        self.id = worker_id or new_worker_id()
        self.observers: list[WorkerObserver] = list(observers or [])
        self.extensions: list[WorkerExtension] = list(extensions or [])
        self.registrations: dict[str, Registration] = {}
        self.consumers: dict[str, QueueConsumer] = {}
        self.redis: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None
        self.started_at: float | None = None
        self.draining = False
        self._stop_requested: asyncio.Event | None = None
        #: Unsafe Redis settings found at start (reported in health as the `redis` component).
        self.redis_warnings: list[str] = []

    # --- registration ----------------------------------------------------------------------

    def register(
        self,
        processor: Processor[Any] | ProcessFn,
        *,
        queue: str | None = None,
        concurrency: int | None = None,
        config: QueueConfig | None = None,
    ) -> None:
        """Bind a processor to a queue. A `Processor` brings its own queue and config."""
        if isinstance(processor, Processor):
            name = queue or getattr(processor, "queue", None)
            model = type(processor).payload_model
            config = config or type(processor).config
        else:
            name = queue
            model = payload_model_of_function(processor)
        if not name:
            raise ValueError("register() needs a queue: set Processor.queue or pass queue=")
        validate_queue_name(name)
        if name in self.registrations:
            raise ValueError(f"queue {name!r} already has a processor")
        config = config or QueueConfig()
        if concurrency is not None:
            config = config.model_copy(update={"concurrency": concurrency})
        self.registrations[name] = Registration(
            queue=name, handler=processor, payload_model=model, config=config
        )

    def processor(
        self, queue: str, *, concurrency: int | None = None, config: QueueConfig | None = None
    ) -> Callable[[ProcessFn], ProcessFn]:
        def decorate(fn: ProcessFn) -> ProcessFn:
            self.register(fn, queue=queue, concurrency=concurrency, config=config)
            return fn

        return decorate

    def cron(self, queue: str, schedule: str | None = None, **fields: Any) -> None:
        """Enqueue a job on ``queue`` at every tick of ``schedule`` (or ``every_seconds=``):
        one job per tick however many workers run.
        See `worker_runtime.consuming.cron.add_cron_job`."""
        add_cron_job(self.registrations, queue, schedule=schedule, **fields)

    # --- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.registrations:
            raise RuntimeError("no processors registered")
        names = self.settings.queues or list(self.registrations)
        unknown = [n for n in names if n not in self.registrations]
        if unknown:
            raise ValueError(f"no processor registered for queue(s): {', '.join(unknown)}")
        url = self.settings.resolved_redis_url()
        self.redis = connect(url, max_connections=16 + 4 * len(names))
        # Idle consumers block up to a few seconds in BZPOPMIN: allow well beyond that.
        self._blocking = connect(url, max_connections=len(names) + 1, socket_timeout=60)
        await ensure_ready(self.redis)
        await ensure_ready(self._blocking)
        self.redis_warnings = await redis_config_warnings(self.redis)
        if self.redis_warnings:
            import structlog  # here: a worker on a safely configured Redis does not load it

            for warning in self.redis_warnings:
                structlog.get_logger("shoal.worker").warning(warning)
        self._stop_requested = asyncio.Event()
        slots = Slots(self.settings.max_jobs_per_worker)
        self.started_at = time.time()
        defaults = self.settings.queue_defaults()
        for name in names:
            reg = self.registrations[name]
            # Pool settings fill what the processor's own QueueConfig left unset.
            explicit = {f: getattr(reg.config, f) for f in reg.config.model_fields_set}
            reg.config = defaults.model_copy(update=explicit)
            consumer = QueueConsumer(
                registration=reg,
                concurrency=reg.config.concurrency or self.settings.concurrency,
                settings=self.settings,
                redis=self.redis,
                blocking_redis=self._blocking,
                slots=slots,
                token=self.id,
                observers=self.observers,
            )
            self.consumers[name] = consumer
            # For producers' cancel.lua: where a parent failed by a cancelled child goes. Best
            # effort: a Redis refusing writes now (OOM, READONLY) must not stop the worker;
            # its consumers report that themselves.
            with contextlib.suppress(*WORKER_RETRY_ERRORS):
                await self.redis.hset(consumer.keys.stats, "dlq", int(reg.config.dead_letter))
        # Extensions first (the status store's migration and writer, the probe server): a
        # part that cannot start fails the worker before it has taken a job, and start-up
        # work does not compete with the first burst of jobs.
        started: list[WorkerExtension] = []
        try:
            for extension in self.extensions:
                await extension.start(self)
                started.append(extension)
        except BaseException:
            for extension in reversed(started):
                with contextlib.suppress(Exception):
                    await extension.stop(self)
            await self._close_clients()
            raise
        if self.settings.gc_freeze:
            # Everything allocated so far (modules, SQLAlchemy's metadata, pydantic models)
            # lives as long as the worker: out of the collector's view, a full collection
            # walks only what jobs allocate (≈100k fewer objects with the status store on).
            gc.collect()  # garbage made while starting is freed, not frozen
            gc.freeze()
        for consumer in self.consumers.values():
            consumer.start()

    def request_stop(self) -> None:
        """Ask a running `run()` to drain and return (what SIGTERM does)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop fetching now, let running jobs finish within the grace period, hand back the
        rest without charging an attempt, then close connections."""
        if self.draining:
            return
        self.draining = True
        grace = self.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        deadline = time.monotonic() + grace
        for consumer in self.consumers.values():
            consumer.stop_fetching()
        await asyncio.gather(*(c.drain(deadline) for c in self.consumers.values()))
        for extension in reversed(self.extensions):
            await extension.stop(self)
        await self._close_clients()

    async def _close_clients(self) -> None:
        for client in (self._blocking, self.redis):
            if client is not None:
                await client.aclose()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Start, process until SIGTERM/SIGINT (or `request_stop`), then drain and return."""
        await self.start()
        assert self._stop_requested is not None
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stop_requested.wait()
        finally:
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self.stop()

    # --- state -----------------------------------------------------------------------------

    def health(self) -> WorkerHealth:
        """The seed's getHealth(): healthy, uptime, last heartbeat, counts, queues."""
        return health_of(self)

    def health_report(self) -> str:
        """The seed's getHealthReport() text."""
        return health_report(self)

    @property
    def abandoned(self) -> int:
        """Processors that ignored cancellation at shutdown (their jobs were handed back)."""
        return sum(len(c.abandoned) for c in self.consumers.values())

    @property
    def active(self) -> int:
        return sum(c.active for c in self.consumers.values())

    @property
    def processed(self) -> int:
        return sum(c.processed for c in self.consumers.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.consumers.values())
