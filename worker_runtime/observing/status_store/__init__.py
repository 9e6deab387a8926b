"""Job status in SQL: pending → processing → completed | failed | dead, plus dead letters.

`StatusStore` is the database (SQLite by default, PostgreSQL in production; schema by the
Alembic migrations in ``migrations/``, applied at start); `StatusRecorder` is the worker's
observer that buffers changes in memory and writes them in batches.
"""

from worker_runtime.observing.status_store.recorder import StatusRecorder
from worker_runtime.observing.status_store.store import (
    DeadLetterRecord,
    InvalidStoreUrl,
    JobStatusRecord,
    StatusStore,
    async_url,
)

__all__ = [
    "DeadLetterRecord",
    "InvalidStoreUrl",
    "JobStatusRecord",
    "StatusRecorder",
    "StatusStore",
    "async_url",
]
