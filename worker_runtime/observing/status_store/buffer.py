"""The in-memory, bounded, coalescing buffer between the hot path and the database (no I/O).

Completions, the common change, are packed into bytes per queue (see `completions`): they
hold no Python object between flushes. Every other change is one entry per job, coalesced: a
job started and failed within one flush window costs one row write. An entry is a tuple
indexed by the constants below. Tuples, not lists or objects, on purpose:
a tuple holding only strings, ints and None is dropped from the garbage collector's tracking
after its first young collection, so 100k buffered jobs do not make every full collection
walk 100k more containers (with lists, full collections cost the benchmark ~3 µs a job).

The merge rules are the SQL upsert's (see `store.upsert_statement`): newer status, attempts
and finish time win; owner, error, result and start time keep the last value that was known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from worker_runtime.observing.status_store import completions

STATUS, ATTEMPTS, OWNER, ERROR, RESULT, CREATED, STARTED, FINISHED, UPDATED = range(9)

Key = tuple[str, str]  # (queue, job id)
#: (status, attempts, owner, error, result, created ms, started ms, finished ms, updated ms)
Entry = tuple[Any, ...]
#: (queue, job id, payload, error, error type, traceback, attempts, owner, dead at ms)
DeadLetter = tuple[str, str, str | None, str, str | None, str | None, int, str | None, int]


class Batch(NamedTuple):
    """What one write takes: entries (upserted first), packed completions per queue (upserted
    after them: the upsert's rules make the order of a job's changes safe either way), and
    dead letters."""

    entries: dict[Key, Entry]
    completed: dict[str, bytearray]
    completed_count: int
    dead: list[DeadLetter]

    @property
    def records(self) -> int:
        return len(self.entries) + self.completed_count + len(self.dead)


class StatusBuffer:
    """Pending status changes. Bounded: past ``max_records`` jobs, changes for *new* jobs are
    counted in ``dropped`` and discarded (changes to buffered jobs still merge)."""

    def __init__(self, *, max_records: int = 100_000) -> None:
        self.max_records = max_records
        self.entries: dict[Key, Entry] = {}
        self.completed: dict[str, bytearray] = {}
        self.completed_count = 0
        self.dead: list[DeadLetter] = []
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.entries) + self.completed_count + len(self.dead)

    def _full(self) -> bool:
        return len(self.entries) + self.completed_count >= self.max_records

    def _put(self, key: Key, change: Entry) -> None:
        older = self.entries.get(key)
        if older is None:
            if self._full():
                self.dropped += 1
                return
            self.entries[key] = change
        else:
            self.entries[key] = merged(older, change)

    def started(self, queue: str, job_id: str, attempts_made: int, now_ms: int) -> None:
        """The job is running (recorded at flush time for jobs still running then)."""
        change = ("processing", attempts_made, None, None, None, now_ms, now_ms, None, now_ms)
        self._put((queue, job_id), change)

    def finished(
        self,
        queue: str,
        job_id: str,
        status: str,
        attempts: int,
        started_ms: int,
        now_ms: int,
        owner: str | None,
        error: str | None,
        result: str | None,
    ) -> None:
        """An attempt ended: ``status`` 'completed', 'failed', 'dead', or 'pending' for a retry
        (which has no finish time)."""
        finished = None if status == "pending" else now_ms
        change = (status, attempts, owner, error, result, started_ms, started_ms, finished, now_ms)
        self._put((queue, job_id), change)

    def completed_job(
        self,
        queue: str,
        job_id: str,
        attempts: int,
        started_ms: int,
        now_ms: int,
        owner: str | None,
        result: str | None,
    ) -> None:
        """A job completed (packed, see `completions`; `completed_jobs` takes a batch)."""
        if self._full():
            # Full: a job with an entry (running, retried) still gets its final state.
            if (queue, job_id) in self.entries:
                self.finished(queue, job_id, "completed", attempts, started_ms, now_ms, owner,
                              None, result)  # fmt: skip
            else:
                self.dropped += 1
            return
        record = (job_id, attempts, started_ms, owner, result)
        self.completed_count += completions.extend(self._packed(queue), (record,), now_ms)

    def changed(
        self,
        queue: str,
        job_id: str,
        status: str,
        attempts: int,
        now_ms: int,
        owner: str | None = None,
        error: str | None = None,
        result: str | None = None,
    ) -> None:
        """A change that did not come from a running attempt (stalls, hand-backs)."""
        finished = None if status == "pending" else now_ms
        change = (status, attempts, owner, error, result, now_ms, None, finished, now_ms)
        self._put((queue, job_id), change)

    def completed_jobs(
        self, queue: str, records: Sequence[completions.Record], now_ms: int
    ) -> None:
        """Jobs of ``queue`` that completed by ``now_ms`` (the hot path's call per batch)."""
        if self.completed_count + len(self.entries) + len(records) > self.max_records:
            for job_id, attempts, started_ms, owner, result in records:
                self.completed_job(queue, job_id, attempts, started_ms, now_ms, owner, result)
            return
        self.completed_count += completions.extend(self._packed(queue), records, now_ms)

    def _packed(self, queue: str) -> bytearray:
        packed = self.completed.get(queue)
        if packed is None:
            packed = self.completed[queue] = bytearray()
        return packed

    def dead_letter(self, record: DeadLetter) -> None:
        if len(self.dead) >= self.max_records:
            self.dropped += 1
            return
        self.dead.append(record)

    def take(self) -> Batch:
        """Everything buffered, leaving the buffer empty (for one write attempt)."""
        batch = Batch(self.entries, self.completed, self.completed_count, self.dead)
        self.entries, self.completed, self.completed_count, self.dead = {}, {}, 0, []
        return batch

    def restore(self, batch: Batch) -> None:
        """Put back what a failed write took; changes made meanwhile are newer and win."""
        for key, older in batch.entries.items():
            newer = self.entries.get(key)
            self.entries[key] = older if newer is None else merged(older, newer)
        for queue, older_packed in batch.completed.items():
            newer_packed = self.completed.get(queue)
            if newer_packed is not None:
                older_packed += newer_packed  # packed records keep their order
            self.completed[queue] = older_packed
        self.completed_count += batch.completed_count
        self.dead[:0] = batch.dead


def merged(older: Entry, newer: Entry) -> Entry:
    """``newer`` completed with what only ``older`` knew (the upsert's rules, in memory)."""
    return (
        newer[STATUS],
        newer[ATTEMPTS],
        older[OWNER] if newer[OWNER] is None else newer[OWNER],
        older[ERROR] if newer[ERROR] is None else newer[ERROR],
        older[RESULT] if newer[RESULT] is None else newer[RESULT],
        min(older[CREATED], newer[CREATED]),
        older[STARTED] if newer[STARTED] is None else newer[STARTED],
        newer[FINISHED],
        newer[UPDATED],
    )
