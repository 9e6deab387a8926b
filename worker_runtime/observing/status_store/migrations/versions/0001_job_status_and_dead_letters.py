"""Job status and dead-letter tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shoal_job_status",
        sa.Column("queue", sa.String(63), primary_key=True),
        sa.Column("job_id", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=True),
        sa.Column("worker_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result_summary", sa.String(500), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    has_owner = sa.text("owner_id IS NOT NULL")
    op.create_index(
        "ix_shoal_job_status_owner",
        "shoal_job_status",
        ["owner_id"],
        sqlite_where=has_owner,
        postgresql_where=has_owner,
    )
    unfinished = sa.text("status <> 'completed'")
    op.create_index(
        "ix_shoal_job_status_unfinished",
        "shoal_job_status",
        ["status", "updated_at"],
        sqlite_where=unfinished,
        postgresql_where=unfinished,
    )
    op.create_table(
        "shoal_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(63), nullable=False),
        sa.Column("job_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.String(255), nullable=True),
        sa.Column("worker_id", sa.String(255), nullable=True),
        sa.Column("dead_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_shoal_dead_letters_queue_job", "shoal_dead_letters", ["queue", "job_id"])


def downgrade() -> None:
    op.drop_table("shoal_dead_letters")
    op.drop_table("shoal_job_status")
