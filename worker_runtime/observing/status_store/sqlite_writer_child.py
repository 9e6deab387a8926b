"""The SQLite status writer's child process (run as a script by `sqlite_writer`).

Standard library only, and no asyncio: the child starts in ≈15 ms of CPU. It runs with
``python -I`` and imports nothing of the worker's packages but `completions` (by path).

Usage: ``sqlite_writer_child.py DATABASE idle|normal`` (see `lower_priority`; the parent
restarts the child as ``normal`` while the writes fall behind). Protocol on stdin/stdout,
length-prefixed frames. Once the database is open the child answers ``b"ok"`` (or the error
that stopped it). Then, per request, a pickled ``(sql, entries, completed, worker_id,
dead_sql, dead_rows)`` batch gets ``b"ok"`` or an error message; a pickled ``("prune",
retention, now_ms)`` gets ``b"ok N"`` (N rows deleted) or an error message; an empty frame
ends it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING or __name__ != "__main__":
    from worker_runtime.observing.status_store import completions, retention
else:
    # As a script: by path, not through the package, whose __init__ imports the worker's
    # dependencies (-I leaves the script's folder off sys.path).
    sys.path.insert(0, str(Path(__file__).parent))
    import completions
    import retention

LENGTH = struct.Struct("!I")
OK = b"ok"
PRUNE = "prune"


def read_frame(stream: BinaryIO) -> bytes:
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return b""
    (size,) = LENGTH.unpack(head)
    return stream.read(size)


def _answer(answers: BinaryIO, answer: bytes) -> None:
    answers.write(LENGTH.pack(len(answer)) + answer)
    answers.flush()


def _open(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    # 16 MiB of page cache (SQLite's default is 2): callers' own (random) job ids touch pages
    # all over the primary key, and a cache miss costs a read syscall (store.SQLITE_PAGE_SIZE).
    db.execute("PRAGMA cache_size=-16384")
    return db


def serve(path: str, requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: one transaction per batch, one answer per batch."""
    try:
        db = _open(path)
    except sqlite3.Error as exc:
        _answer(answers, f"{type(exc).__name__}: {exc}".encode())
        return
    _answer(answers, OK)
    while message := read_frame(requests):
        request = pickle.loads(message)
        if request[0] == PRUNE:
            _answer(answers, _prune(db, retention.Retention(*request[1]), request[2]))
            continue
        sql, entries, completed, worker_id, dead_sql, dead_rows = request
        # Rows built before taking the write lock, so it is held for SQLite's work only.
        rows = completions.batch_rows(entries, completed, worker_id)
        try:
            db.execute("BEGIN IMMEDIATE")
            if rows:
                db.executemany(sql, rows)
            if dead_rows:
                db.executemany(dead_sql, dead_rows)
            db.execute("COMMIT")
            answer = OK
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            answer = f"{type(exc).__name__}: {exc}".encode()
        _answer(answers, answer)
    db.close()


def _prune(db: sqlite3.Connection, rules: retention.Retention, now_ms: int) -> bytes:
    try:
        return OK + f" {retention.prune_sqlite(db, rules, now_ms)}".encode()
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}".encode()


def lower_priority(mode: str) -> None:
    """``idle``: nice 19, CPU time that Redis and the worker do not want; ``normal``: nice 5,
    about a quarter of a contended core, several times what SQLite needs at full speed.

    Not SCHED_IDLE: a writer starved inside its transaction would hold SQLite's write lock
    for seconds, and other writers of the file would time out (priority inversion); at nice
    19 it still gets a small share, and a slow write switches the parent to ``normal``."""
    os.nice(19 if mode == "idle" else 5)


if __name__ == "__main__":
    lower_priority(sys.argv[2] if len(sys.argv) > 2 else "normal")
    # The parent gone (killed, or it gave up on this child): nothing to answer, exit quietly.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
