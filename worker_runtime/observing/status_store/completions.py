"""Completed jobs, packed into bytes on the hot path and unpacked into status rows at write time.

Most status changes are "this job completed". Kept as Python objects until the next flush
(a tuple per job, its key, its id string), thousands of them were allocated, held and freed in
bulk on every flush, which scattered the allocator's memory and cost the 20k-job benchmark
about a fifth of its throughput, far more than the ≈1 µs a job of CPU it accounted for. Packed
into one growing ``bytearray`` per queue, a completion holds no object once the call returns,
and the batch goes to the SQLite writer process without pickling a row.

Standard library only: the SQLite writer's child process imports this file by path (and
builds its rows with `batch_rows`, as the store does).

Record layout (little-endian): a header ``(id length, attempt, started ms, finished ms,
owner length + 1 or 0 for none, summary length + 1 or 0 for none)`` then the id, owner and
summary as UTF-8.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

_HEADER = struct.Struct("<IiqqII")
_pack = _HEADER.pack
_unpack_from = _HEADER.unpack_from
HEADER_SIZE = _HEADER.size


#: One completion to pack: (job id, attempt, started ms, owner or None, summary or None).
Record = tuple[str, int, int, "str | None", "str | None"]


def extend(out: bytearray, records: Iterable[Record], finished_ms: int) -> int:
    """Pack completions that finished at ``finished_ms`` onto ``out``; how many."""
    count = 0
    for job_id, attempt, started_ms, owner, summary in records:
        # backslashreplace: a lone surrogate (say an os.fsdecode()d file name in a result)
        # must not make recording a completed job raise.
        jid = job_id.encode("utf-8", "backslashreplace")
        if owner is None and summary is None:
            out += _pack(len(jid), attempt, started_ms, finished_ms, 0, 0)
            out += jid
        else:
            owned = b"" if owner is None else owner.encode("utf-8", "backslashreplace")
            summed = b"" if summary is None else summary.encode("utf-8", "backslashreplace")
            out += _pack(
                len(jid),
                attempt,
                started_ms,
                finished_ms,
                0 if owner is None else len(owned) + 1,
                0 if summary is None else len(summed) + 1,
            )
            out += jid
            out += owned
            out += summed
        count += 1
    return count


def rows(queue: str, packed: bytes | bytearray, worker_id: str | None) -> Iterator[tuple[Any, ...]]:
    """The status rows of ``packed`` completions, in the store's upsert column order."""
    view = memoryview(packed)
    at, end = 0, len(packed)
    while at < end:
        id_len, attempt, started, finished, owner_len, summary_len = _unpack_from(view, at)
        at += HEADER_SIZE
        job_id = str(view[at : at + id_len], "utf-8")
        at += id_len
        owner = None
        if owner_len:
            owner = str(view[at : at + owner_len - 1], "utf-8")
            at += owner_len - 1
        summary = None
        if summary_len:
            summary = str(view[at : at + summary_len - 1], "utf-8")
            at += summary_len - 1
        # created_at = started_at: the row may be new (no 'pending' row was written first).
        yield (
            queue, job_id, "completed", attempt, owner, worker_id, None, summary,
            started, started, finished, finished,
        )  # fmt: skip


def batch_rows(
    entries: dict[tuple[str, str], tuple[Any, ...]],
    completed: dict[str, bytearray],
    worker_id: str | None,
) -> list[tuple[Any, ...]]:
    """A status batch's upsert rows, for the store and the SQLite writer process alike: the
    buffer's entries (``(queue, job id) -> entry``, see `buffer`), then the packed completions
    (after the entries: the upsert's rules make the order of one job's changes safe)."""
    result = [
        (queue, job_id, e[0], e[1], e[2], worker_id, e[3], e[4], e[5], e[6], e[7], e[8])
        for (queue, job_id), e in entries.items()
    ]
    for queue, packed in completed.items():
        result.extend(rows(queue, packed, worker_id))
    return result
