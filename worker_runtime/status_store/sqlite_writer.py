"""Batched SQLite writes in a child process, so they cost the worker's event loop almost nothing.

Measured on the 20k no-op job benchmark: writing each job's row through aiosqlite's thread cost
the event loop's thread about 5 µs per job (SQLite binds every parameter holding the GIL, and
the two threads then fight over it), half again what a no-op job costs. A child process has
its own interpreter: the worker only pickles the batch (≈0.4 µs a row) and writes it to a pipe.

The child is this file run as a script (stdlib only: no import of the worker's packages, and
not `multiprocessing`, whose ``spawn`` re-imports the parent's ``__main__``). Protocol on its
stdin/stdout: length-prefixed frames; the parent sends a pickled ``(sql, entries, worker_id,
dead_sql, dead_rows)`` batch and reads back ``b"ok"`` or an error message; an empty frame
ends the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sqlite3
import struct
import sys
from typing import Any, BinaryIO

#: How long `close` waits for the child to finish its last batch and exit.
CLOSE_SECONDS = 10.0
_LENGTH = struct.Struct("!I")


class SqliteWriteError(RuntimeError):
    """The child could not write a batch (nothing of it was committed)."""


def _read_frame(stream: BinaryIO) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return b""
    (size,) = _LENGTH.unpack(head)
    return stream.read(size)


def serve(path: str, requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: one transaction per batch, one answer per batch."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    while message := _read_frame(requests):
        sql, entries, worker_id, dead_sql, dead_rows = pickle.loads(message)
        rows = [
            (queue, job_id, e[0], e[1], e[2], worker_id, e[3], e[4], e[5], e[6], e[7], e[8])
            for (queue, job_id), e in entries.items()
        ]
        try:
            db.execute("BEGIN IMMEDIATE")
            if rows:
                db.executemany(sql, rows)
            if dead_rows:
                db.executemany(dead_sql, dead_rows)
            db.execute("COMMIT")
            answer = b"ok"
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            answer = f"{type(exc).__name__}: {exc}".encode()
        answers.write(_LENGTH.pack(len(answer)) + answer)
        answers.flush()
    db.close()


class SqliteWriterProcess:
    """The parent's handle on the child (started on first use, restarted if it died)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        await self._kill()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", __file__, self.path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return self._process

    async def write(
        self,
        sql: str,
        entries: dict[tuple[str, str], tuple[Any, ...]],
        worker_id: str | None,
        dead_sql: str,
        dead_rows: list[tuple[Any, ...]],
    ) -> None:
        """Upsert the buffer's ``entries`` (rows are built in the child) and insert
        ``dead_rows``, in one transaction."""
        message = (sql, entries, worker_id, dead_sql, dead_rows)
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        async with self._lock:  # one batch in flight: answers match requests
            process = await self._started()
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                process.stdin.write(_LENGTH.pack(len(payload)) + payload)
                await process.stdin.drain()
                (size,) = _LENGTH.unpack(await process.stdout.readexactly(_LENGTH.size))
                answer = await process.stdout.readexactly(size)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self._kill()
                raise SqliteWriteError(f"status writer process died: {exc!r}") from exc
            except BaseException:
                # Cancelled or timed out mid-batch: its answer may still come and would be
                # taken for the next batch's, so start afresh.
                await self._kill()
                raise
        if answer != b"ok":
            raise SqliteWriteError(answer.decode(errors="replace"))

    async def close(self) -> None:
        async with self._lock:
            process = self._process
            if process is not None and process.returncode is None and process.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    process.stdin.write(_LENGTH.pack(0))
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


if __name__ == "__main__":
    import os

    # Bookkeeping yields the CPU to job processing (and to a Redis on the same host): under
    # a burst the writes lag a little and catch up, instead of slowing every job down.
    # At +5 the writer still gets about a quarter of a contended core, several times what
    # SQLite needs at full speed, so a sustained load does not outrun it.
    os.nice(5)
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
