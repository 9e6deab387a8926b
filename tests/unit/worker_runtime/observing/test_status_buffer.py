"""The status store's in-memory buffer: coalescing, bound, and merging back after a failure."""

from __future__ import annotations

from worker_runtime.observing.status_store import completions
from worker_runtime.observing.status_store.buffer import (
    ERROR,
    FINISHED,
    OWNER,
    STARTED,
    STATUS,
    StatusBuffer,
)
from worker_runtime.observing.status_store.store import UPSERT_COLUMNS


def test_a_job_started_and_finished_in_one_window_is_one_entry() -> None:
    buf = StatusBuffer()
    buf.started("q", "j1", 0, 1000)
    buf.finished("q", "j1", "completed", 1, 1000, 1010, "user-7", None, '{"ok":1}')
    batch = buf.take()
    assert batch.dead == []
    assert batch.completed == {}
    assert batch.entries == {
        ("q", "j1"): ("completed", 1, "user-7", None, '{"ok":1}', 1000, 1000, 1010, 1010)
    }
    assert len(buf) == 0


def test_a_completed_job_is_packed_and_unpacks_to_its_status_row() -> None:
    buf = StatusBuffer()
    buf.completed_job("q", "j1", 1, 1000, 1010, None, None)
    buf.completed_job("q", "j\t2\n✓", 3, 1001, 1020, "user-7", '{"ok":"é"}')
    buf.completed_job("other", "j3", 1, 1002, 1030, None, "")
    assert buf.entries == {}
    assert len(buf) == 3
    batch = buf.take()
    assert batch.records == 3
    assert len(buf) == 0
    rows = [
        row for q, packed in batch.completed.items() for row in completions.rows(q, packed, "w")
    ]
    assert rows == [
        ("q", "j1", "completed", 1, None, "w", None, None, 1000, 1000, 1010, 1010),
        ("q", "j\t2\n✓", "completed", 3, "user-7", "w", None, '{"ok":"é"}', 1001, 1001, 1020, 1020),
        ("other", "j3", "completed", 1, None, "w", None, "", 1002, 1002, 1030, 1030),
    ]


def test_packed_rows_are_in_the_upsert_column_order() -> None:
    (row,) = completions.rows("q", _packed("j1"), "w")
    assert len(row) == len(UPSERT_COLUMNS)
    named = dict(zip(UPSERT_COLUMNS, row, strict=True))
    assert (named["queue"], named["job_id"], named["status"]) == ("q", "j1", "completed")
    assert named["created_at"] == named["started_at"] == 1000
    assert named["finished_at"] == named["updated_at"] == 1010


def _packed(job_id: str) -> bytearray:
    out = bytearray()
    completions.extend(out, [(job_id, 1, 1000, None, None)], 1010)
    return out


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
    buf = StatusBuffer(max_records=3)
    buf.started("q", "a", 0, 1)
    buf.completed_job("q", "x", 1, 1, 2, None, None)
    buf.started("q", "b", 0, 1)
    buf.started("q", "c", 0, 1)  # over the bound: dropped
    buf.completed_job("q", "y", 1, 1, 2, None, None)  # dropped too
    buf.changed("q", "a", "completed", 1, 2)  # a known job still updates
    assert buf.dropped == 2
    assert buf.completed_count == 1
    assert set(buf.entries) == {("q", "a"), ("q", "b")}
    assert buf.entries[("q", "a")][STATUS] == "completed"


def test_restore_after_failed_write_keeps_newer_changes() -> None:
    buf = StatusBuffer()
    buf.finished("q", "j1", "pending", 1, 1000, 1005, "owner-1", "boom", None)
    buf.dead_letter(("q", "j0", "{}", "boom", "E", "tb", 3, None, 900))
    buf.completed_job("q", "older", 1, 1, 2, None, None)
    taken = buf.take()
    # happened while the write was failing:
    buf.finished("q", "j1", "failed", 2, 1400, 1500, None, None, None)
    buf.completed_job("q", "newer", 1, 3, 4, None, None)
    buf.restore(taken)
    entry = buf.entries[("q", "j1")]
    assert entry[STATUS] == "failed"
    assert entry[OWNER] == "owner-1"  # only the older change knew it
    assert entry[ERROR] == "boom"
    assert entry[STARTED] == 1400
    assert entry[FINISHED] == 1500
    assert buf.dead == [("q", "j0", "{}", "boom", "E", "tb", 3, None, 900)]
    assert [r[1] for r in completions.rows("q", buf.completed["q"], None)] == ["older", "newer"]
    assert len(buf) == 4


def test_a_full_buffer_still_records_the_completion_of_a_buffered_job() -> None:
    buf = StatusBuffer(max_records=2)
    buf.started("q", "running", 0, 1000)
    buf.finished("q", "retried", "pending", 1, 1000, 1005, None, "boom", None)
    buf.completed_job("q", "running", 1, 1000, 1100, None, None)
    buf.completed_job("q", "retried", 2, 1200, 1300, None, None)
    buf.completed_job("q", "new", 1, 1000, 1100, None, None)  # full: a new job is dropped
    assert buf.dropped == 1
    assert buf.entries[("q", "running")][STATUS] == "completed"
    assert buf.entries[("q", "retried")][STATUS] == "completed"
    assert buf.entries[("q", "retried")][ERROR] == "boom"


def test_a_lone_surrogate_is_escaped_not_raised() -> None:
    buf = StatusBuffer()
    buf.completed_job("q", "j1", 1, 1000, 1010, "user-\ud800", "file \udcff.txt")
    ((_q, packed),) = buf.take().completed.items()
    (row,) = completions.rows("q", packed, None)
    assert row[4] == "user-\\ud800"
    assert row[7] == "file \\udcff.txt"


def test_a_batch_near_the_bound_falls_back_to_one_by_one() -> None:
    buf = StatusBuffer(max_records=3)
    buf.started("q", "running", 0, 1000)
    records = [("running", 1, 1000, None, None), ("x", 1, 1000, None, None),
               ("y", 1, 1000, None, None), ("z", 1, 1000, None, None)]  # fmt: skip
    buf.completed_jobs("q", records, 1100)  # 1 entry + 4 would pass the bound of 3
    packed = [row[1] for row in completions.rows("q", buf.completed["q"], None)]
    assert packed == ["running", "x"]  # written after the entries: "running" ends completed
    assert buf.dropped == 2  # y and z: new jobs past the bound
    buf.take()
    buf.completed_jobs("q", records[1:], 1200)  # room again: packed as one batch
    assert buf.completed_count == 3
