"""The dead-letter page's reads: newest first, paginated and counted on the server.

Uses only `Queue`'s public dead-letter API (oldest-first ranges), mapping "newest first"
positions onto them. A text filter scans at most `FILTER_SCAN` jobs per request and hands back
a cursor, so a filter over 100k jobs never stalls the page (or Redis).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker_runtime.core.codec import JobRecord
from worker_runtime.producing.queue import Queue

FILTER_SCAN = 2000
FILTER_CHUNK = 500


def oldest_first_range(total: int, *, start: int, count: int) -> tuple[int, int]:
    """(offset, limit) of the oldest-first range holding newest-first positions
    ``start .. start+count-1`` (limit 0 when past the end)."""
    end = max(0, total - start)
    offset = max(0, end - count)
    return offset, end - offset


def matches(job: JobRecord, needle: str) -> bool:
    """Case-insensitive match on the id, the error or the traceback."""
    needle = needle.lower()
    return any(needle in (text or "").lower() for text in (job.id, job.error, job.traceback))


@dataclass(frozen=True, slots=True)
class DeadPage:
    jobs: list[JobRecord]
    total: int  # dead-lettered jobs in the queue
    start: int  # newest-first position of the first job examined
    next_start: int | None  # where the next page starts (None: no more)
    examined: int  # jobs looked at (filtered pages)


async def newest(queue: Queue, *, total: int, start: int, count: int) -> list[JobRecord]:
    offset, limit = oldest_first_range(total, start=start, count=count)
    if limit <= 0:
        return []
    return list(reversed(await queue.dead_letters(offset=offset, limit=limit)))


async def dead_page(queue: Queue, *, start: int, size: int, needle: str = "") -> DeadPage:
    total = (await queue.counts())["dead"]
    start = max(0, min(start, total))
    if not needle:
        jobs = await newest(queue, total=total, start=start, count=size)
        following = start + size
        return DeadPage(jobs, total, start, following if following < total else None, len(jobs))
    found: list[JobRecord] = []
    position = start
    while position < total and position - start < FILTER_SCAN and len(found) < size:
        chunk = await newest(queue, total=total, start=position, count=FILTER_CHUNK)
        for job in chunk:
            position += 1
            if matches(job, needle):
                found.append(job)
                if len(found) == size:
                    break
        if not chunk:
            break
    return DeadPage(found, total, start, position if position < total else None, position - start)
