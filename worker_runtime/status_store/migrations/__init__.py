"""Alembic migrations of the status store, applied by `worker_runtime.status_store.migrate`."""
