"""Job events: read and follow a queue's bounded event stream; wait for a job to finish.

The scripts that change a job's state append to the queue's stream (``XADD ... MAXLEN ~ N``,
in the same call, under the queue's hash tag): ``completed`` (one entry per acknowledged batch,
listing its ids), ``failed``, ``dead``, ``retried``, ``progress`` and ``cancelled``.
``QueueConfig.events_max_len`` bounds it (0 turns events off).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis

from worker_runtime.core.codec import JobRecord, JobState
from worker_runtime.core.keys import QueueKeys


class EventSource(Protocol):
    """What following events needs of a `Queue` (a protocol: the queue module imports this one)."""

    @property
    def name(self) -> str: ...
    @property
    def keys(self) -> QueueKeys: ...
    @property
    def redis(self) -> aioredis.Redis: ...
    async def get_job(self, job_id: str) -> JobRecord | None: ...


#: Events after which no worker runs the job again.
FINAL_EVENTS = {"completed": JobState.COMPLETED, "failed": JobState.FAILED,
                "dead": JobState.DEAD, "cancelled": JobState.CANCELLED}  # fmt: skip
#: Longest single block on the stream; between blocks the job's record is read again, so a
#: queue with events turned off is still waited for (at this granularity).
POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One job's event. ``at_ms`` is Redis' clock when it was written (the entry id)."""

    event: str
    job_id: str
    queue: str
    stream_id: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def at_ms(self) -> int:
        return int(self.stream_id.split("-", 1)[0])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event, "queue": self.queue, "id": self.job_id}
        out["at_ms"] = self.at_ms
        for key, value in self.fields.items():
            out[key] = _maybe_json(value) if key == "progress" else _maybe_number(value)
        out["stream_id"] = self.stream_id
        return out


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _maybe_number(value: str) -> Any:
    return int(value) if value.lstrip("-").isdigit() else value


def parse_entry(queue: str, stream_id: str, fields: dict[str, str]) -> list[JobEvent]:
    """One stream entry as job events (a ``completed`` batch becomes one event per job)."""
    event = fields.get("e", "")
    if "ids" in fields:
        return [JobEvent(event, job_id, queue, stream_id) for job_id in json.loads(fields["ids"])]
    extra = {k: v for k, v in fields.items() if k not in ("e", "id")}
    return [JobEvent(event, fields.get("id", ""), queue, stream_id, extra)]


async def last_stream_id(redis: Any, key: str) -> str:
    """The newest entry's id ('0-0' for an empty stream): read strictly after it."""
    newest = await redis.xrevrange(key, count=1)
    return str(newest[0][0]) if newest else "0-0"


async def follow(
    queue: EventSource, *, after: str = "$", block_seconds: float = POLL_SECONDS, count: int = 500
) -> AsyncIterator[JobEvent]:
    """Yield the queue's events as they come, forever (``after``: a stream id, '$' = new only,
    '0-0' = everything still kept)."""
    key = queue.keys.events
    last = await last_stream_id(queue.redis, key) if after == "$" else after
    block_ms = max(1, round(block_seconds * 1000))
    while True:
        reply: Any = await queue.redis.xread({key: last}, count=count, block=block_ms)
        for _stream, entries in reply or []:
            for stream_id, fields in entries:
                last = stream_id
                for event in parse_entry(queue.name, stream_id, fields):
                    yield event


async def wait_for_job(queue: EventSource, job_id: str, *, timeout: float | None) -> JobRecord:  # noqa: ASYNC109
    """The job's record once it is completed, failed, dead-lettered or cancelled.

    Raises TimeoutError after ``timeout`` seconds, LookupError when there is no such job.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    key = queue.keys.events
    # Read the stream from before the record, so an event between the two reads is seen.
    last = await last_stream_id(queue.redis, key)
    record = await queue.get_job(job_id)
    if record is None:
        raise LookupError(f"job {job_id} not found in queue {queue.name}")
    while not record.state.final:
        block = POLL_SECONDS
        if deadline is not None:
            block = min(block, deadline - time.monotonic())
            if block <= 0:
                raise TimeoutError(f"job {job_id} still {record.state.value} after {timeout:g} s")
        reply: Any = await queue.redis.xread(
            {key: last}, count=1000, block=max(1, round(block * 1000))
        )
        final: JobState | None = None
        for _stream, entries in reply or []:
            for stream_id, fields in entries:
                last = stream_id
                for event in parse_entry(queue.name, stream_id, fields):
                    if event.job_id == job_id and event.event in FINAL_EVENTS:
                        final = FINAL_EVENTS[event.event]
        latest = await queue.get_job(job_id)
        if latest is None:
            if final is None:
                raise LookupError(f"job {job_id} was removed from queue {queue.name}")
            # Completed and not kept (keep_completed=0): the event is all there is.
            return JobRecord(id=job_id, queue=queue.name, state=final)
        record = latest
    return record
