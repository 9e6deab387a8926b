"""The job wire format: how a job is stored in its Redis hash, and read back (pure).

Hash fields (short names keep memory low at millions of jobs):
``data`` payload JSON, ``ts`` enqueued ms, ``att`` attempts made, ``stl`` stalls, ``state``,
``due`` due ms (delayed), ``st`` last start ms, ``fin`` finish ms, ``prog`` progress JSON,
``res`` result JSON, ``err`` last error, ``tb`` last traceback, ``hist`` attempt history JSON,
``lk`` lease token of the worker running it, ``replays`` times replayed from dead-letter.
Flow control (docs/flow-control.md): ``pri`` priority (absent = 0), ``grp`` rate-limit group
it was parked under, ``par`` parent job id (a flow's child), ``pend`` children not finished
yet and ``ocf`` on-child-failure policy (a flow's parent).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    WAITING_CHILDREN = "waiting-children"

    @property
    def final(self) -> bool:
        """No worker will run the job again (short of a dead-letter replay)."""
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED})


class AttemptRecord(BaseModel):
    """One failed attempt, as kept in a job's history (and in the dead-letter store)."""

    model_config = ConfigDict(extra="allow")

    attempt: int | None = None
    error: str
    error_type: str | None = None
    started_at: int | None = None
    finished_at: int | None = None
    worker: str | None = None
    stalled: bool = False


class JobRecord(BaseModel):
    """A job as stored, for `Queue.get_job`, dead-letter listings and the CLI."""

    id: str
    queue: str
    state: JobState
    data: Any = None
    attempts: int = 0
    stalls: int = 0
    progress: Any = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    history: list[AttemptRecord] = Field(default_factory=list)
    enqueued_at: int | None = None
    due_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    replays: int = 0
    priority: int = 0
    parent: str | None = None
    pending_children: int | None = None


def dumps(value: Any) -> str:
    """Compact JSON; the one encoder for payloads, results and progress."""
    return json.dumps(value, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable")


def encode_payload(payload: Any) -> str:
    if isinstance(payload, BaseModel):
        return payload.model_dump_json()
    return dumps(payload)


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _json(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except RecursionError:  # "[[[[...": garbage, as far as a job's fields go
        raise ValueError("JSON nested too deeply") from None


def _history(value: str | None) -> list[AttemptRecord]:
    entries = _json(value)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError(f"history: expected a JSON list, got {type(entries).__name__}")
    return [AttemptRecord.model_validate(entry) for entry in entries]


def decode_job(job_id: str, queue: str, fields: dict[str, str]) -> JobRecord:
    """Build a JobRecord from an HGETALL reply (str -> str).

    Raises ValueError (pydantic's ValidationError and json's JSONDecodeError among them) for a
    hash whose fields are garbage; nothing else (fuzzed: tests/unit/core/test_fuzz_codec.py).
    """
    return JobRecord(
        id=job_id,
        queue=queue,
        state=JobState(fields.get("state", "waiting")),
        data=_json(fields.get("data")),
        attempts=_int(fields.get("att")) or 0,
        stalls=_int(fields.get("stl")) or 0,
        progress=_json(fields.get("prog")),
        result=_json(fields.get("res")),
        error=fields.get("err") or None,
        traceback=fields.get("tb") or None,
        history=_history(fields.get("hist")),
        enqueued_at=_int(fields.get("ts")),
        due_at=_int(fields.get("due")),
        started_at=_int(fields.get("st")),
        finished_at=_int(fields.get("fin")),
        replays=_int(fields.get("replays")) or 0,
        priority=_int(fields.get("pri")) or 0,
        parent=fields.get("par") or None,
        pending_children=_int(fields.get("pend")),
    )
