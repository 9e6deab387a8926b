"""Alembic environment: runs on the connection handed over by `status_store.migrate`."""

from __future__ import annotations

from alembic import context

from worker_runtime.observing.status_store.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run status store migrations through worker_runtime.observing.status_store.migrate(url)"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
