"""The status store's in-memory buffer: coalescing, bound, and merging back after a failure."""

from __future__ import annotations

from worker_runtime.status_store.buffer import (
    ERROR,
    FINISHED,
    OWNER,
    STARTED,
    STATUS,
    StatusBuffer,
)


def test_a_job_started_and_finished_in_one_window_is_one_entry() -> None:
    buf = StatusBuffer()
    buf.started("q", "j1", 0, 1000)
    buf.finished("q", "j1", "completed", 1, 1000, 1010, "user-7", None, '{"ok":1}')
    entries, dead = buf.take()
    assert dead == []
    assert entries == {
        ("q", "j1"): ("completed", 1, "user-7", None, '{"ok":1}', 1000, 1000, 1010, 1010)
    }
    assert len(buf) == 0


def test_a_quick_job_is_one_call_and_one_entry() -> None:
    buf = StatusBuffer()
    buf.finished("q", "j1", "completed", 1, 1000, 1010, None, None, None)
    assert buf.entries == {("q", "j1"): ("completed", 1, None, None, None, 1000, 1000, 1010, 1010)}


def test_retry_goes_back_to_pending_and_keeps_the_error() -> None:
    buf = StatusBuffer()
    buf.started("q", "j1", 0, 1000)
    buf.finished("q", "j1", "pending", 1, 1000, 1005, None, "boom", None)
    buf.started("q", "j1", 1, 2000)
    entry = buf.entries[("q", "j1")]
    assert entry[STATUS] == "processing"
    assert entry[ERROR] == "boom"
    assert entry[STARTED] == 2000
    assert entry[FINISHED] is None


def test_bound_drops_new_jobs_only_and_counts_them() -> None:
    buf = StatusBuffer(max_records=2)
    buf.started("q", "a", 0, 1)
    buf.started("q", "b", 0, 1)
    buf.started("q", "c", 0, 1)  # over the bound: dropped
    buf.changed("q", "a", "completed", 1, 2)  # a known job still updates
    assert buf.dropped == 1
    assert set(buf.entries) == {("q", "a"), ("q", "b")}
    assert buf.entries[("q", "a")][STATUS] == "completed"


def test_restore_after_failed_write_keeps_newer_changes() -> None:
    buf = StatusBuffer()
    buf.finished("q", "j1", "pending", 1, 1000, 1005, "owner-1", "boom", None)
    buf.dead_letter(("q", "j0", "{}", "boom", "E", "tb", 3, None, 900))
    taken = buf.take()
    # happened while the write was failing:
    buf.finished("q", "j1", "completed", 2, 1400, 1500, None, None, None)
    buf.restore(*taken)
    entry = buf.entries[("q", "j1")]
    assert entry[STATUS] == "completed"
    assert entry[OWNER] == "owner-1"  # only the older change knew it
    assert entry[ERROR] == "boom"
    assert entry[STARTED] == 1400
    assert entry[FINISHED] == 1500
    assert buf.dead == [("q", "j0", "{}", "boom", "E", "tb", 3, None, 900)]
