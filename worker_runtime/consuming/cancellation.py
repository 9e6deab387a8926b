"""Keep a cancelled task cancelled when a library turned the cancellation into another error.

Seen here: a task cancelled while inside a redis-py call sometimes gets a connection error
(an ``OSError``/``TimeoutError`` subclass) instead of ``CancelledError``. A loop that catches
connection errors to retry then swallows the cancellation and never stops, so ``stop()``
waits forever. Call `reraise_if_cancelling()` in such an ``except`` branch, and once per
iteration of a loop that awaits library calls (the cancellation may be lost deeper down).
"""

from __future__ import annotations

import asyncio


def reraise_if_cancelling() -> None:
    """Raise ``CancelledError`` if someone asked the current task to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
