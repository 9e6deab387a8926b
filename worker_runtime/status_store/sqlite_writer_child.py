"""The SQLite status writer's child process (run as a script by `sqlite_writer`).

Standard library only, and no asyncio: the child starts in ≈15 ms of CPU. It runs with
``python -I`` and imports nothing of the worker's packages but `completions` (by path).

Usage: ``sqlite_writer_child.py DATABASE idle|normal``. ``idle``: Linux's SCHED_IDLE, so the
writes run on CPU time nothing else wants (the parent switches to ``normal``, nice 5, when
they fall behind). Protocol on stdin/stdout, length-prefixed frames. Once the database is open
the child answers ``b"ok"`` (or the error that stopped it). Then, per request, a pickled
``(sql, entries, completed, worker_id, dead_sql, dead_rows)`` batch gets ``b"ok"`` or an error
message; an empty frame ends the child.
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
    from worker_runtime.status_store import completions
else:
    # As a script: by path, not through the package, whose __init__ imports the worker's
    # dependencies (-I leaves the script's folder off sys.path).
    sys.path.insert(0, str(Path(__file__).parent))
    import completions

LENGTH = struct.Struct("!I")
OK = b"ok"


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
        sql, entries, completed, worker_id, dead_sql, dead_rows = pickle.loads(message)
        rows = [
            (queue, job_id, e[0], e[1], e[2], worker_id, e[3], e[4], e[5], e[6], e[7], e[8])
            for (queue, job_id), e in entries.items()
        ]
        try:
            db.execute("BEGIN IMMEDIATE")
            if rows:
                db.executemany(sql, rows)
            for queue, packed in completed.items():
                db.executemany(sql, completions.rows(queue, packed, worker_id))
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


def lower_priority(mode: str) -> None:
    """``idle``: run only on otherwise idle CPU; ``normal``: nice 5, about a quarter of a
    contended core, several times what SQLite needs at full speed."""
    if mode == "idle":
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError):  # not Linux: the lowest nice value instead
            os.nice(19)
            return
    os.nice(5)


if __name__ == "__main__":
    lower_priority(sys.argv[2] if len(sys.argv) > 2 else "normal")
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)
