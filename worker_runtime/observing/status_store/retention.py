"""How long the status store keeps finished jobs: an age and a row cap, pruned by the writer.

Without it the store grows with every job (≈200 bytes a row on SQLite: a 2,000 jobs/s soak
wrote 121 MB in 6 minutes; measured since: ≈200 MB per million jobs). Only finished rows
(``completed``, ``failed``, ``dead``) are pruned; a job still pending (waiting, delayed,
between attempts) or processing keeps its row whatever its age. Dead letters follow the
same age. Each pass deletes at most `PRUNE_CHUNK` rows per rule, so a store far
over its bounds is brought down over a few passes instead of holding the write lock for long.

The statements use named parameters (``:cutoff``), which both the stdlib ``sqlite3`` module
(the SQLite writer process) and SQLAlchemy's ``text()`` (PostgreSQL, in-memory SQLite) take.
Standard library only: the SQLite writer process imports this module by path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

#: Rows one rule deletes in one pass at most.
PRUNE_CHUNK = 20_000

FINISHED = "status IN ('completed', 'failed', 'dead')"

COUNT_FINISHED_SQL = f"SELECT count(*) FROM shoal_job_status WHERE {FINISHED}"
#: Finished rows last changed before ``:cutoff`` (milliseconds since the epoch).
DELETE_OLD_SQL = (
    "DELETE FROM shoal_job_status WHERE (queue, job_id) IN ("
    f"SELECT queue, job_id FROM shoal_job_status WHERE {FINISHED} AND updated_at < :cutoff "
    "LIMIT :chunk)"
)
#: The ``:excess`` oldest finished rows (the row cap).
DELETE_OLDEST_SQL = (
    "DELETE FROM shoal_job_status WHERE (queue, job_id) IN ("
    f"SELECT queue, job_id FROM shoal_job_status WHERE {FINISHED} "
    "ORDER BY updated_at LIMIT :excess)"
)
DELETE_OLD_DEAD_LETTERS_SQL = (
    "DELETE FROM shoal_dead_letters WHERE id IN ("
    "SELECT id FROM shoal_dead_letters WHERE dead_at < :cutoff LIMIT :chunk)"
)


class Retention(NamedTuple):
    """``max_age_seconds``/``max_rows``: 0 keeps rows forever / without a cap."""

    max_age_seconds: float = 7 * 24 * 3600.0
    max_rows: int = 1_000_000
    interval_seconds: float = 60.0

    @property
    def enabled(self) -> bool:
        return self.max_age_seconds > 0 or self.max_rows > 0

    def cutoff_ms(self, now_ms: int) -> int | None:
        """Rows last changed before this are past their age (None: no age limit)."""
        if self.max_age_seconds <= 0:
            return None
        return now_ms - int(self.max_age_seconds * 1000)

    def due(self, last_prune_ms: int | None, now_ms: int) -> bool:
        return self.enabled and (
            last_prune_ms is None or now_ms - last_prune_ms >= self.interval_seconds * 1000
        )


def excess_rows(finished: int, max_rows: int) -> int:
    """How many of the oldest finished rows the cap removes in one pass."""
    if max_rows <= 0:
        return 0
    return min(max(finished - max_rows, 0), PRUNE_CHUNK)


def age_statements(retention: Retention, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """The age rule's deletes (run before the cap's: they may make it unnecessary)."""
    cutoff = retention.cutoff_ms(now_ms)
    if cutoff is None:
        return []
    params = {"cutoff": cutoff, "chunk": PRUNE_CHUNK}
    return [(DELETE_OLD_SQL, params), (DELETE_OLD_DEAD_LETTERS_SQL, params)]


def prune_sqlite(db: Any, retention: Retention, now_ms: int) -> int:
    """One pass on a ``sqlite3`` connection (autocommit mode); returns the rows deleted.

    Each delete is its own short transaction, so writers of the file wait for one chunk at
    most; the count that sizes the cap's delete runs outside any write transaction."""
    deleted = sum(_delete(db, sql, params) for sql, params in age_statements(retention, now_ms))
    excess = excess_rows(db.execute(COUNT_FINISHED_SQL).fetchone()[0], retention.max_rows)
    if excess:
        deleted += _delete(db, DELETE_OLDEST_SQL, {"excess": excess})
    return deleted


def _delete(db: Any, sql: str, params: dict[str, Any]) -> int:
    db.execute("BEGIN IMMEDIATE")
    try:
        count = int(db.execute(sql, params).rowcount)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return count
