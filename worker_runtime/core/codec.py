"""The job wire format: how a job is stored in its Redis hash, and read back (pure).

Hash fields (short names keep memory low at millions of jobs):
``data`` payload JSON, ``ts`` enqueued ms, ``att`` attempts made, ``stl`` stalls, ``state``,
``due`` due ms (delayed), ``st`` last start ms, ``fin`` finish ms, ``prog`` progress JSON,
``res`` result JSON, ``err`` last error, ``tb`` last traceback, ``hist`` attempt history JSON,
``lk`` lease token of the run holding it (the worker's id, a random part, a fetch count: one
per lease), ``replays`` times replayed from dead-letter.
Flow control (docs/flow-control.md): ``pri`` priority (absent = 0), ``grp`` rate-limit group
it was parked under, ``par`` parent job id (a flow's child), ``pend`` children not finished
yet and ``ocf`` on-child-failure policy (a flow's parent).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


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


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (an exception message can hold one) becomes
    the escape ``\\ud800``; sent as it is, it could not be encoded and its job not recorded."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


# Reading a record never fails on a field holding garbage (a hand-edited or corrupted hash,
# as dead-lettered by fetch.lua): such a field reads as absent, or as the raw text.
def _int(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _json(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # garbage ("[[[[..." too): read as text
        return value


def _history(value: str | None) -> list[AttemptRecord]:
    entries = _json(value)
    if not isinstance(entries, list):
        return []
    records = []
    for entry in entries:
        try:
            records.append(AttemptRecord.model_validate(entry))
        except ValidationError:
            continue
    return records


def _state(value: str | None) -> JobState:
    try:
        return JobState(value or "waiting")
    except ValueError:
        return JobState.WAITING


def decode_job(job_id: str, queue: str, fields: dict[str, str]) -> JobRecord:
    """Build a JobRecord from an HGETALL reply (str -> str).

    Fields holding garbage read as absent (or as raw text), so a dead-letter listing never
    fails on one corrupted job; anything else would be a ValueError (pydantic's
    ValidationError among them), never another exception (fuzzed:
    tests/unit/core/test_fuzz_codec.py).
    """
    return JobRecord(
        id=job_id,
        queue=queue,
        state=_state(fields.get("state")),
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
