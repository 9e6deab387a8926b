"""When the SQLite status writer runs at normal priority instead of on idle CPU."""

from __future__ import annotations

import pytest

from worker_runtime.observing.status_store.recorder import SLOW_WRITE_SECONDS, falling_behind

BOUND = 100_000


@pytest.mark.parametrize(
    ("behind", "records", "last_write", "expected"),
    [
        (False, 5_000, 0.05, False),  # keeping up
        (False, 25_000, 0.05, True),  # a quarter of the bound waiting
        (False, 10, SLOW_WRITE_SECONDS, True),  # the last write was slow: starved of CPU
        (True, 20_000, 0.05, True),  # behind until under a tenth ...
        (True, 9_999, 0.05, False),  # ... and fast again
        (True, 100, SLOW_WRITE_SECONDS / 2, True),  # not yet fast
    ],
)
def test_falling_behind(behind: bool, records: int, last_write: float, expected: bool) -> None:
    assert (
        falling_behind(behind, records=records, bound=BOUND, last_write_seconds=last_write)
        is expected
    )


def test_a_tiny_bound_still_returns_to_idle() -> None:
    assert not falling_behind(True, records=0, bound=5, last_write_seconds=0.0)
    assert falling_behind(False, records=1, bound=3, last_write_seconds=0.0)
