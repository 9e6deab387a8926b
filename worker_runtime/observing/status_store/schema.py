"""The status store's tables (SQLAlchemy Core). Migrations in ``migrations/`` create them.

Times are integer milliseconds since the epoch, like everything Shoal keeps in Redis: cheap to
write in bulk and unambiguous across SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

#: Alembic's version table for this store, so it never collides with the application's own.
VERSION_TABLE = "shoal_status_alembic_version"

JOB_STATUSES = ("pending", "processing", "completed", "failed", "dead")

#: Rows the status index covers: everything but the (many, rarely queried) completed jobs.
UNFINISHED = "status <> 'completed'"

job_status = Table(
    "shoal_job_status",
    metadata,
    Column("queue", String(63), primary_key=True),
    Column("job_id", String(255), primary_key=True),
    Column("status", String(16), nullable=False),  # one of JOB_STATUSES
    Column("attempts", Integer, nullable=False, default=0),
    Column("owner_id", String(255), nullable=True),
    Column("worker_id", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("result_summary", String(500), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # Partial indexes: the common row (a completed job without an owner) enters neither,
    # which roughly halves the cost of writing it; the lookups they serve stay indexed.
    Index(
        "ix_shoal_job_status_owner",
        "owner_id",
        sqlite_where=text("owner_id IS NOT NULL"),
        postgresql_where=text("owner_id IS NOT NULL"),
    ),
    Index(
        "ix_shoal_job_status_unfinished",
        "status",
        "updated_at",
        sqlite_where=text(UNFINISHED),
        postgresql_where=text(UNFINISHED),
    ),
)

dead_letters = Table(
    "shoal_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("queue", String(63), nullable=False),
    Column("job_id", String(255), nullable=False),
    Column("payload", Text, nullable=True),  # the job's JSON as stored in Redis
    Column("error", Text, nullable=False),
    Column("error_type", String(255), nullable=True),
    Column("traceback", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("owner_id", String(255), nullable=True),
    Column("worker_id", String(255), nullable=True),
    Column("dead_at", BigInteger, nullable=False),
    Index("ix_shoal_dead_letters_queue_job", "queue", "job_id"),
)
