"""The job status database: engine, migrations, batched writes and reads (SQLAlchemy 2 async).

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) in production. Writes are upserts in
batches of many rows inside one transaction; rows are plain tuples turned into parameters
without ORM objects, so a batch of thousands costs milliseconds.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from worker_runtime.observing.status_store import completions, retention
from worker_runtime.observing.status_store.buffer import Batch, Entry, Key
from worker_runtime.observing.status_store.schema import dead_letters, job_status
from worker_runtime.observing.status_store.sqlite_writer import SqliteWriterProcess

MIGRATIONS = Path(__file__).parent / "migrations"
#: Rows per statement: keeps each round trip and each transaction short.
WRITE_CHUNK = 2000
SQLITE_PAGE_SIZE = 16384
#: Serialises concurrent migrations of several pods on PostgreSQL (any constant works).
MIGRATION_LOCK_ID = 0x5E0A1


class InvalidStoreUrl(ValueError):
    """STATUS_STORE_URL is not a database URL Shoal can use."""


def async_url(url: str) -> str:
    """Accept the usual URL spellings and pick the async driver (aiosqlite or asyncpg)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidStoreUrl(f"STATUS_STORE_URL: not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise InvalidStoreUrl(
        f"STATUS_STORE_URL: unsupported database {backend!r} (use sqlite:// or postgresql://)"
    )


class JobStatusRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    queue: str
    job_id: str
    status: Literal["pending", "processing", "completed", "failed", "dead"]
    attempts: int
    owner_id: str | None
    worker_id: str | None
    error: str | None
    result_summary: str | None
    created_at: int
    started_at: int | None
    finished_at: int | None
    updated_at: int


class DeadLetterRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    queue: str
    job_id: str
    payload: str | None
    error: str
    error_type: str | None
    traceback: str | None
    attempts: int
    owner_id: str | None
    worker_id: str | None
    dead_at: int


#: The order of the upsert's parameters (the tuples `write` builds).
UPSERT_COLUMNS = (
    "queue", "job_id", "status", "attempts", "owner_id", "worker_id", "error", "result_summary",
    "created_at", "started_at", "finished_at", "updated_at",
)  # fmt: skip


DEAD_LETTER_COLUMNS = (
    "queue", "job_id", "payload", "error", "error_type", "traceback", "attempts", "owner_id",
    "worker_id", "dead_at",
)  # fmt: skip
#: The dead-letter insert for the SQLite writer process (qmark parameters).
DEAD_LETTER_SQL = (
    f"INSERT INTO shoal_dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in DEAD_LETTER_COLUMNS)})"
)


def upsert_statement(dialect: str) -> Any:
    """INSERT .. ON CONFLICT (queue, job_id) DO UPDATE, with the buffer's merge rules, and
    never letting an older change overwrite a newer one (a retried batch after an outage)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(job_status)
    new, old = stmt.excluded, job_status.c
    return stmt.on_conflict_do_update(
        index_elements=[old.queue, old.job_id],
        set_={
            "status": new.status,
            "attempts": new.attempts,
            "owner_id": func.coalesce(new.owner_id, old.owner_id),
            "worker_id": new.worker_id,
            "error": func.coalesce(new.error, old.error),
            "result_summary": func.coalesce(new.result_summary, old.result_summary),
            "started_at": func.coalesce(new.started_at, old.started_at),
            "finished_at": new.finished_at,
            "updated_at": new.updated_at,
        },
        where=new.updated_at >= old.updated_at,
    )


def _upgrade(connection: Connection) -> None:
    # Alembic says "Context impl ..." and "Will assume ..." at INFO on every start: debug only.
    alembic_log = logging.getLogger("alembic")
    if alembic_log.getEffectiveLevel() > logging.DEBUG:
        alembic_log.setLevel(logging.WARNING)
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_migration_lock(url: str) -> int | None:
    """An exclusive lock beside a SQLite file while migrating (PostgreSQL uses an advisory
    lock): processes sharing the file would otherwise race to create the tables, since
    SQLite's DDL does not wait for another migration's transaction."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    fd = os.open(f"{parsed.database}.migrate-lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the CLI, tests) read while the worker writes; NORMAL is durable
    # against process crashes, which is what a status log needs.
    cursor = dbapi_connection.cursor()
    # 16 KiB pages (instead of 4) keep the primary key's B-tree shallow: with random ids (a
    # caller's own), the writer's CPU per row at 200k rows fell from 6.3 to 3.8 µs (with its
    # 16 MiB cache); Shoal's own time-ordered ids cost 2.6. Only takes effect on a new file
    # (set before WAL mode): existing databases keep their page size.
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class StatusStore:
    """One database of job statuses. Create, `await migrate()`, write batches, read."""

    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self.url = async_url(url)
        self.timeout = timeout_seconds
        self.dialect = make_url(self.url).get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.dialect == "postgresql":
            # Fail fast while the database is down (asyncpg waits 60 s by default): the
            # recorder retries with backoff and reports the outage meanwhile.
            connect_args = {
                "timeout": min(5.0, timeout_seconds),
                "command_timeout": timeout_seconds,
            }
        self.engine: AsyncEngine = create_async_engine(
            self.url, pool_pre_ping=True, connect_args=connect_args
        )
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        compiled = upsert_statement(self.dialect).compile(dialect=self.engine.dialect)
        if compiled.positiontup != list(UPSERT_COLUMNS):
            raise RuntimeError(f"unexpected upsert parameter order: {compiled.positiontup}")
        self._upsert_sql = str(compiled)
        # SQLite files are written by a child process (see sqlite_writer); in-memory
        # databases cannot be shared with one, so they go through the engine.
        database = make_url(self.url).database
        self._schema_ready = False  # migrated once: a retry after a writer failure skips it
        self._writer: SqliteWriterProcess | None = None
        if self.dialect == "sqlite" and database not in (None, "", ":memory:"):
            self._writer = SqliteWriterProcess(str(database))

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic, run in-process) and get ready to
        write."""
        async with asyncio.timeout(self.timeout * 3):
            if not self._schema_ready:
                if self._writer is not None:  # a new state directory, for the default path
                    Path(self._writer.path).parent.mkdir(parents=True, exist_ok=True)
                lock = await asyncio.to_thread(_sqlite_migration_lock, self.url)
                try:
                    async with self.engine.begin() as conn:
                        await conn.run_sync(_upgrade)
                finally:
                    if lock is not None:
                        os.close(lock)  # closing releases the flock
                self._schema_ready = True
            if self._writer is not None:
                await self._writer.start()  # ready before the first job, not during a burst

    async def write(self, batch: Batch, *, worker_id: str | None, behind: bool = False) -> None:
        """Persist a batch in one transaction (all or nothing, so a failed batch is retried
        whole). ``behind``: the writes are falling behind (the SQLite writer then runs at
        normal priority rather than on idle CPU only)."""
        if self._writer is not None:
            # The child process builds the rows: the event loop only pickles the entries
            # (completions are already bytes).
            dead_tuples = [(*d[:8], worker_id, d[8]) for d in batch.dead]
            async with asyncio.timeout(self.timeout):
                await self._writer.write(
                    sql=self._upsert_sql,
                    entries=batch.entries,
                    completed=batch.completed,
                    worker_id=worker_id,
                    dead_sql=DEAD_LETTER_SQL,
                    dead_rows=dead_tuples,
                    behind=behind,
                )
            return
        # Driver-level executemany of tuples: SQLAlchemy's per-row parameter processing would
        # cost ~3 µs a row on the event loop's thread; this costs a tenth of that.
        rows = completions.batch_rows(batch.entries, batch.completed, worker_id)
        dead_rows = [
            {
                "queue": d[0],
                "job_id": d[1],
                "payload": d[2],
                "error": d[3],
                "error_type": d[4],
                "traceback": d[5],
                "attempts": d[6],
                "owner_id": d[7],
                "worker_id": worker_id,
                "dead_at": d[8],
            }
            for d in batch.dead
        ]
        async with asyncio.timeout(self.timeout):
            async with self.engine.begin() as conn:
                for start in range(0, len(rows), WRITE_CHUNK):
                    await conn.exec_driver_sql(self._upsert_sql, rows[start : start + WRITE_CHUNK])
                if dead_rows:
                    await conn.execute(dead_letters.insert(), dead_rows)

    async def prune(self, rules: retention.Retention, *, now_ms: int) -> int:
        """Delete finished rows past their age and beyond the row cap (one bounded pass, see
        `retention`); returns the rows deleted."""
        async with asyncio.timeout(self.timeout * 3):
            if self._writer is not None:
                return await self._writer.prune(rules, now_ms=now_ms)
            deleted = 0
            for sql, params in retention.age_statements(rules, now_ms):
                async with self.engine.begin() as conn:
                    deleted += (await conn.execute(text(sql), params)).rowcount
            async with self.engine.connect() as conn:
                finished = (await conn.execute(text(retention.COUNT_FINISHED_SQL))).scalar_one()
            excess = retention.excess_rows(int(finished), rules.max_rows)
            if excess:
                async with self.engine.begin() as conn:
                    result = await conn.execute(
                        text(retention.DELETE_OLDEST_SQL), {"excess": excess}
                    )
                    deleted += result.rowcount
            return deleted

    async def mark_pending(self, queue: str, job_ids: list[str], *, now_ms: int) -> None:
        """For producers: record jobs as pending when they are enqueued."""
        entries: dict[Key, Entry] = {
            (queue, job_id): ("pending", 0, None, None, None, now_ms, None, None, now_ms)
            for job_id in job_ids
        }
        await self.write(Batch(entries, {}, 0, []), worker_id=None)

    # --- reading ---------------------------------------------------------------------------

    async def get(self, queue: str, job_id: str) -> JobStatusRecord | None:
        query = select(job_status).where(job_status.c.queue == queue, job_status.c.job_id == job_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return JobStatusRecord.model_validate(dict(row)) if row else None

    async def find(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        owner_id: str | None = None,
        limit: int = 100,
    ) -> list[JobStatusRecord]:
        """Newest changes first."""
        query = select(job_status).order_by(job_status.c.updated_at.desc()).limit(limit)
        if queue is not None:
            query = query.where(job_status.c.queue == queue)
        if status is not None:
            query = query.where(job_status.c.status == status)
        if owner_id is not None:
            query = query.where(job_status.c.owner_id == owner_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [JobStatusRecord.model_validate(dict(r)) for r in rows]

    async def counts(self, *, queue: str | None = None) -> dict[str, int]:
        query = select(job_status.c.status, func.count()).group_by(job_status.c.status)
        if queue is not None:
            query = query.where(job_status.c.queue == queue)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {status: int(n) for status, n in rows}

    async def dead_letters(
        self, *, queue: str | None = None, limit: int = 100
    ) -> list[DeadLetterRecord]:
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if queue is not None:
            query = query.where(dead_letters.c.queue == queue)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [DeadLetterRecord.model_validate(dict(r)) for r in rows]

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self.engine.dispose()
