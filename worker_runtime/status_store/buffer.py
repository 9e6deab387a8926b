"""The in-memory, bounded, coalescing buffer between the hot path and the database (no I/O).

One entry per job: a job started and finished within one flush window costs one row write.
An entry is a tuple indexed by the constants below. Tuples, not lists or objects, on purpose:
a tuple holding only strings, ints and None is dropped from the garbage collector's tracking
after its first young collection, so 100k buffered jobs do not make every full collection
walk 100k more containers (with lists, full collections cost the benchmark ~3 µs a job).

The merge rules are the SQL upsert's (see `store.upsert_statement`): newer status, attempts
and finish time win; owner, error, result and start time keep the last value that was known.
"""

from __future__ import annotations

from typing import Any

STATUS, ATTEMPTS, OWNER, ERROR, RESULT, CREATED, STARTED, FINISHED, UPDATED = range(9)

Key = tuple[str, str]  # (queue, job id)
#: (status, attempts, owner, error, result, created ms, started ms, finished ms, updated ms)
Entry = tuple[Any, ...]
#: (queue, job id, payload, error, error type, traceback, attempts, owner, dead at ms)
DeadLetter = tuple[str, str, str | None, str, str | None, str | None, int, str | None, int]


class StatusBuffer:
    """Pending status changes. Bounded: past ``max_records`` distinct jobs, changes for *new*
    jobs are counted in ``dropped`` and discarded (changes to buffered jobs still merge)."""

    def __init__(self, *, max_records: int = 100_000) -> None:
        self.max_records = max_records
        self.entries: dict[Key, Entry] = {}
        self.dead: list[DeadLetter] = []
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.entries) + len(self.dead)

    def _put(self, key: Key, change: Entry) -> None:
        older = self.entries.get(key)
        if older is None:
            if len(self.entries) >= self.max_records:
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
        (which has no finish time). The hot path's one call per job."""
        finished = None if status == "pending" else now_ms
        key = (queue, job_id)
        change = (status, attempts, owner, error, result, started_ms, started_ms, finished, now_ms)
        if key in self.entries:
            self.entries[key] = merged(self.entries[key], change)
        elif len(self.entries) < self.max_records:
            self.entries[key] = change
        else:
            self.dropped += 1

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

    def dead_letter(self, record: DeadLetter) -> None:
        if len(self.dead) >= self.max_records:
            self.dropped += 1
            return
        self.dead.append(record)

    def take(self) -> tuple[dict[Key, Entry], list[DeadLetter]]:
        """Everything buffered, leaving the buffer empty (for one write attempt)."""
        entries, dead = self.entries, self.dead
        self.entries, self.dead = {}, []
        return entries, dead

    def restore(self, entries: dict[Key, Entry], dead: list[DeadLetter]) -> None:
        """Put back what a failed write took; changes made meanwhile are newer and win."""
        for key, older in entries.items():
            newer = self.entries.get(key)
            self.entries[key] = older if newer is None else merged(older, newer)
        self.dead[:0] = dead


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
