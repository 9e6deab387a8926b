"""Batched SQLite writes in a child process, so they cost the worker's event loop almost nothing.

Measured on the 20k no-op job benchmark: writing each job's row through aiosqlite's thread cost
the event loop's thread about 5 µs per job (SQLite binds every parameter holding the GIL, and
the two threads then fight over it), half again what a no-op job costs. A child process has
its own interpreter: the worker only pickles the batch (≈0.4 µs a row) and writes it to a pipe.

The child is `sqlite_writer_child` run as a script (not `multiprocessing`, whose ``spawn``
re-imports the parent's ``__main__``); its docstring has the protocol and the priorities. It is
started with the store (`start`), not on the first write: starting an interpreter costs tens of
milliseconds of CPU, which a burst of jobs should not have to share.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
from pathlib import Path
from typing import Any

from worker_runtime.observing.status_store.retention import Retention
from worker_runtime.observing.status_store.sqlite_writer_child import LENGTH, OK, PRUNE

#: How long `close` waits for the child to finish its last batch and exit.
CLOSE_SECONDS = 10.0
_CHILD = str(Path(__file__).with_name("sqlite_writer_child.py"))


class SqliteWriteError(RuntimeError):
    """The child could not write a batch (nothing of it was committed)."""


class SqliteWriterProcess:
    """The parent's handle on the child (started by `start` or the first write, restarted if
    it died)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.priority = "idle"
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child (if it is not running) and wait until it has the database open."""
        async with self._lock:
            await self._started()

    async def _started(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        await self._kill()
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", _CHILD, self.path, self.priority,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            answer = await self._answer(process)
        except BaseException:
            await self._kill()
            raise
        if answer != OK:
            await self._kill()
            raise SqliteWriteError(f"status writer cannot open {self.path}: {answer.decode()}")
        return process

    async def _answer(self, process: asyncio.subprocess.Process) -> bytes:
        assert process.stdout is not None
        try:
            (size,) = LENGTH.unpack(await process.stdout.readexactly(LENGTH.size))
            return await process.stdout.readexactly(size)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self._kill()
            raise SqliteWriteError(f"status writer process died: {exc!r}") from exc

    async def write(
        self,
        *,
        sql: str,
        entries: dict[tuple[str, str], tuple[Any, ...]],
        completed: dict[str, bytearray],
        worker_id: str | None,
        dead_sql: str,
        dead_rows: list[tuple[Any, ...]],
        behind: bool = False,
    ) -> None:
        """Upsert the buffer's ``entries`` and packed ``completed`` jobs (rows are built in
        the child) and insert ``dead_rows``, in one transaction. ``behind``: the writes are
        falling behind, run the child at normal priority until they are not."""
        answer = await self._request(
            (sql, entries, completed, worker_id, dead_sql, dead_rows),
            priority="normal" if behind else "idle",
        )
        if answer != OK:
            raise SqliteWriteError(answer.decode(errors="replace"))

    async def prune(self, retention: Retention, *, now_ms: int) -> int:
        """Delete what the retention rules allow (see `retention`); the rows deleted."""
        # At the child's current priority: a prune is no reason to restart it.
        answer = await self._request((PRUNE, tuple(retention), now_ms), priority=None)
        if not answer.startswith(OK + b" "):
            raise SqliteWriteError(answer.decode(errors="replace"))
        return int(answer[len(OK) + 1 :])

    async def _request(self, message: tuple[Any, ...], *, priority: str | None) -> bytes:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        async with self._lock:  # one request in flight: answers match requests
            if priority is not None and priority != self.priority:
                # An unprivileged process cannot raise its priority again: a new child. Between
                # batches nothing is in flight, so the old one is simply killed.
                await self._kill()
                self.priority = priority
            process = await self._started()
            assert process.stdin is not None
            try:
                process.stdin.write(LENGTH.pack(len(payload)) + payload)
                await process.stdin.drain()
                answer = await self._answer(process)
            except ConnectionError as exc:
                await self._kill()
                raise SqliteWriteError(f"status writer process died: {exc!r}") from exc
            except BaseException:
                # Cancelled or timed out mid-batch: its answer may still come and would be
                # taken for the next batch's, so start afresh.
                await self._kill()
                raise
        return answer

    async def close(self) -> None:
        """Let the child close the database and exit (an empty frame), killing it if not."""
        async with self._lock:
            process = self._process
            if process is not None and process.returncode is None and process.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    process.stdin.write(LENGTH.pack(0))
                    await process.stdin.drain()
                    process.stdin.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_SECONDS):
                        await process.wait()
            await self._kill()

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
