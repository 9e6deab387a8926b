"""Cron schedule parsing and tick maths (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from worker_runtime.core.cron_schedule import CronJob, CronSchedule, InvalidCronSchedule


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/5 * * * *", ts(2026, 1, 1, 10, 3, 7), ts(2026, 1, 1, 10, 5)),
        ("*/5 * * * *", ts(2026, 1, 1, 10, 5), ts(2026, 1, 1, 10, 10)),  # strictly after
        ("0 9 * * mon-fri", ts(2026, 1, 2, 9, 0, 1), ts(2026, 1, 5, 9)),  # Fri -> Mon
        ("30 2 1 * *", ts(2026, 1, 15), ts(2026, 2, 1, 2, 30)),
        ("0 0 29 2 *", ts(2026, 3, 1), ts(2028, 2, 29)),  # next leap day
        ("0 12 13 * fri", ts(2026, 2, 1), ts(2026, 2, 6, 12)),  # dom OR dow (Vixie)
        ("@hourly", ts(2026, 1, 1, 10, 59, 59), ts(2026, 1, 1, 11)),
        ("0 0 * jan,jul 7", ts(2026, 1, 5), ts(2026, 1, 11)),  # 7 = Sunday
        ("*/10 * * * * *", ts(2026, 1, 1, 0, 0, 5), ts(2026, 1, 1, 0, 0, 10)),  # seconds
        ("59 23 31 12 *", ts(2026, 12, 31, 23, 59), ts(2027, 12, 31, 23, 59)),
        ("0 0 1-10/3 * *", ts(2026, 1, 2), ts(2026, 1, 4)),
    ],
)
def test_next_tick(schedule: str, after: int, expected: int) -> None:
    assert CronSchedule.parse(schedule).next_after(after) == expected


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("61 * * * *", "outside 0-59"),
        ("*/0 * * * *", "at least 1"),
        ("5-1 * * * *", "outside"),
        ("x * * * *", "not a number"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_schedules_say_why(schedule: str, message: str) -> None:
    with pytest.raises(InvalidCronSchedule, match=message):
        CronSchedule.parse(schedule).next_after(0)


def test_cron_job_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="schedule: '0 0 31 2 \\*' never fires"):
        CronJob(schedule="0 0 31 2 *")
    with pytest.raises(ValidationError, match="exactly one of schedule and every_seconds"):
        CronJob(schedule="* * * * *", every_seconds=5)
    with pytest.raises(ValidationError, match="exactly one"):
        CronJob()


def test_cron_job_names_and_interval_ticks() -> None:
    assert CronJob(schedule="*/5 * * * *").name == "*/5 * * * *"
    every = CronJob(every_seconds=30, data={"x": 1})
    assert every.name == "every-30s"
    assert every.next_after(ts(2026, 1, 1, 0, 0, 29)) == ts(2026, 1, 1, 0, 0, 30)
    assert every.next_after(ts(2026, 1, 1, 0, 0, 30)) == ts(2026, 1, 1, 0, 1, 0)
