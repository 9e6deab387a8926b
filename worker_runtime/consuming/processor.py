"""Processors: the user's code for one queue, and the Job handle it receives."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from worker_runtime.config import QueueConfig
from worker_runtime.core.codec import dumps
from worker_runtime.producing.flows import children_failures, children_results

P = TypeVar("P")


class JobOwner(Protocol):
    """What a running job calls back into: its consumer (a protocol, so this module needs no
    import of the consumer, which imports it)."""

    async def report_progress(self, job: Job[Any], value: str) -> None: ...


class JobResult(BaseModel):
    """What a processor may return (the seed's JobResult). ``success=False`` fails the attempt."""

    model_config = ConfigDict(extra="forbid")

    success: bool = True
    data: Any = None
    error: str | None = None


@dataclass(slots=True)
class Job(Generic[P]):
    """A running job as a processor sees it."""

    id: str
    queue: str
    data: P
    attempt: int  # 1-based number of this attempt
    attempts_made: int  # attempts finished before this one
    stalls: int
    raw: str  # the payload JSON as stored
    started_at: float
    _consumer: JobOwner | None = None
    _lease: str = ""  # this run's lease token: its acknowledgement counts only while it holds

    @property
    def lease(self) -> tuple[str, str]:
        """The identity of this run: (job id, lease token). A job leased again (its lease was
        lost, say while this worker's event loop stalled) is another run with another token."""
        return (self.id, self._lease)

    async def progress(self, value: float | int | dict[str, Any]) -> None:
        """Report progress: a number or ``{"step": ..., "progress": ...}``. Stored on the job."""
        if self._consumer is not None:
            await self._consumer.report_progress(self, dumps(value))

    async def children_results(self) -> dict[str, Any]:
        """In a flow's parent: each child's result by child job id."""
        return await children_results(self)

    async def children_failures(self) -> dict[str, str]:
        """In a flow's parent: the error of each child that failed, by child job id."""
        return await children_failures(self)


class Processor(Generic[P]):
    """Base class for a queue's processor.

    Subclass as ``class Resize(Processor[ResizePayload])`` with ``queue = "images"``; the payload
    is validated against the pydantic model before `process` runs (a mismatch fails the job
    without retries). ``config`` sets retry, timeout and concurrency for the queue.
    """

    queue: ClassVar[str]
    config: ClassVar[QueueConfig | None] = None
    payload_model: ClassVar[type[Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("payload_model") is None:
            cls.payload_model = _payload_model_from_bases(cls)

    async def process(self, job: Job[P]) -> JobResult | Any:
        raise NotImplementedError

    def __call__(self, job: Job[P]) -> Awaitable[JobResult | Any]:
        return self.process(job)


def _payload_model_from_bases(cls: type) -> type[Any] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is Processor:
            args = get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                return args[0]
    return None


ProcessFn = Callable[[Job[Any]], Awaitable[Any]]


@dataclass(slots=True)
class Registration:
    """A processor bound to a queue with its effective configuration."""

    queue: str
    handler: ProcessFn
    payload_model: type[BaseModel] | None
    config: QueueConfig


def payload_model_of_function(fn: Callable[..., Any]) -> type[BaseModel] | None:
    """``async def f(job: Job[Payload])`` -> Payload, when Payload is a pydantic model."""
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:  # an unresolvable annotation just means "no model"
        return None
    params = list(inspect.signature(fn).parameters)
    if not params:
        return None
    args = get_args(hints.get(params[0]))
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None
