"""What `shoal up` shows each tick: one immutable report, rendered live or as a JSON line.

Field names follow the WorkerPool status where they mean the same (desiredReplicas, replicas,
readyReplicas, backlog, inFlight, lastScaleReason), so a script can read either.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

WorkerState = Literal["starting", "running", "draining", "backoff"]
EventKind = Literal["scaled", "started", "crashed", "stopping", "stopped", "killed"]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )


class QueueRow(_Model):
    queue: str
    waiting: int
    due_delayed: int
    active: int
    arrival_rate: float | None  # jobs/s, smoothed as the autoscaler sees it
    finish_rate: float | None
    oldest_waiting_seconds: float


class WorkerRow(_Model):
    name: str  # also its POD_NAME
    pid: int | None
    state: WorkerState
    in_flight: int | None  # from its heartbeat; None until it reports
    capacity: int
    restarts: int
    up_seconds: float | None
    restart_in_seconds: float | None = None  # state backoff: next start


class Event(_Model):
    t: float  # seconds since `shoal up` started
    kind: EventKind
    worker: str | None
    message: str


class TickReport(_Model):
    kind: Literal["tick"] = "tick"
    t: float
    pool: str
    desired_replicas: int
    replicas: int  # worker processes alive and not draining
    ready_replicas: int  # of those, the ones whose heartbeat has been seen
    draining: int
    backlog: int
    in_flight: int
    queues: list[QueueRow]
    workers: list[WorkerRow]
    reason: str  # the autoscaler's reason this tick
    last_scale_reason: str | None
    last_scale_seconds_ago: float | None
    observation_error: str | None
    phase: Literal["running", "stopping", "stopped"]
    events: list[Event]  # what happened since the previous report

    def to_json(self) -> str:
        return self.model_dump_json()


class RunSummary(_Model):
    kind: Literal["summary"] = "summary"
    pool: str
    seconds: float
    peak_replicas: int
    starts: int
    crashes: int
    kills: int
    jobs: int | None = None  # jobs completed, when the caller counted them (`shoal demo`)
    message: str = ""  # the one-line summary a person reads
