"""Alembic migrations of the status store.

Applied by `worker_runtime.observing.status_store.migrate`.
"""
