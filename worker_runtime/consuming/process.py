"""Run a worker as a process' main program (what `shoal worker` does).

Like ``asyncio.run(worker.run())``, except that a processor which ignores cancellation cannot
hang the exit: ``asyncio.run`` cancels the tasks left at the end and waits for them without a
bound. Here they get `CANCEL_GRACE_SECONDS`; then the process exits without them (their jobs
were handed back by the drain, see `QueueConsumer.drain`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

from worker_runtime.consuming.consumer import CANCEL_GRACE_SECONDS

if TYPE_CHECKING:
    from worker_runtime.consuming.worker import Worker


def run_worker_process(worker: Worker) -> None:
    """Run ``worker`` until SIGTERM/SIGINT, drain it, and return (or exit: see the module)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(worker.run())
        # Abandoned processors had their bound in the drain already: no second wait.
        if worker.abandoned or _cancel_left_tasks(loop):
            # The thread pool may hold a blocked processor too: do not join anything.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _cancel_left_tasks(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task[object]]:
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    if not left:
        return set()
    _, stubborn = loop.run_until_complete(asyncio.wait(left, timeout=CANCEL_GRACE_SECONDS))
    return stubborn
