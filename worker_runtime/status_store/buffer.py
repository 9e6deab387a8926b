"""The in-memory, bounded, coalescing buffer between the hot path and the database (no I/O).

One entry per job: a job started and finished within one flush window costs one row write.
An entry is a list indexed by the constants below (a list, not an object, because the hot
path mutates it in place for a fraction of a microsecond). The merge rules are the same as
the SQL upsert's (see `store.upsert_statement`): newer status, attempts and finish time win;
owner, error, result and start time keep the last value that was known.
"""

from __future__ import annotations

from typing import Any

STATUS, ATTEMPTS, OWNER, ERROR, RESULT, CREATED, STARTED, FINISHED, UPDATED = range(9)
#: fields an update without a value leaves as they were
KEPT_WHEN_MISSING = (OWNER, ERROR, RESULT, STARTED)

Key = tuple[str, str]  # (queue, job id)
Entry = list[Any]
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

    def started(self, queue: str, job_id: str, attempts_made: int, now_ms: int) -> None:
        key = (queue, job_id)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_records:
                self.dropped += 1
                return
            self.entries[key] = [
                "processing", attempts_made, None, None, None, now_ms, now_ms, None, now_ms,
            ]  # fmt: skip
        else:
            entry[STATUS] = "processing"
            entry[ATTEMPTS] = attempts_made
            entry[STARTED] = now_ms
            entry[FINISHED] = None
            entry[UPDATED] = now_ms

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
        """A job reached ``status``; 'pending' (back in the queue) clears the finish time."""
        finished = None if status == "pending" else now_ms
        key = (queue, job_id)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= self.max_records:
                self.dropped += 1
                return
            self.entries[key] = [
                status, attempts, owner, error, result, now_ms, None, finished, now_ms,
            ]  # fmt: skip
            return
        entry[STATUS] = status
        entry[ATTEMPTS] = attempts
        if owner is not None:
            entry[OWNER] = owner
        if error is not None:
            entry[ERROR] = error
        if result is not None:
            entry[RESULT] = result
        entry[FINISHED] = finished
        entry[UPDATED] = now_ms

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
            if newer is None:
                self.entries[key] = older
            else:
                merge_into(newer, older)
        self.dead[:0] = dead


def merge_into(newer: Entry, older: Entry) -> None:
    """Complete ``newer`` with what only ``older`` knew (the upsert's rules, in memory)."""
    for field in KEPT_WHEN_MISSING:
        if newer[field] is None:
            newer[field] = older[field]
    newer[CREATED] = min(newer[CREATED], older[CREATED])
