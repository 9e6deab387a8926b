"""Generated job ids: UUID-sized hex, unique, and ordered by creation time."""

from __future__ import annotations

import time

from worker_runtime.producing.job_spec import new_job_id


def test_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_ids_sort_by_creation_millisecond() -> None:
    before = new_job_id()
    deadline = time.monotonic() + 1.0
    after = new_job_id()
    while after[:12] == before[:12] and time.monotonic() < deadline:  # the next millisecond
        after = new_job_id()
    assert before < after
    assert int(after[:12], 16) - int(before[:12], 16) < 1000  # epoch milliseconds in front
    assert abs(int(after[:12], 16) - time.time() * 1000) < 5000
