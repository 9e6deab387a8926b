"""Which workers a shrinking pool stops: the cheapest to lose first."""

from __future__ import annotations

import pytest

from worker_runtime.supervisor.scale_down import Candidate, choose_to_stop


def c(name: str, in_flight: int | None, started_at: float = 0.0, *, proc: bool = True) -> Candidate:
    return Candidate(name=name, has_process=proc, in_flight=in_flight, started_at=started_at)


@pytest.mark.parametrize(
    ("candidates", "count", "expected"),
    [
        # idle before busy, whatever the order given
        ([c("busy", 3), c("idle", 0)], 1, ["idle"]),
        # a slot waiting out a crash backoff costs nothing: it goes before an idle worker
        ([c("idle", 0), c("backoff", None, proc=False)], 1, ["backoff"]),
        # not reported yet (no heartbeat) goes after idle, before busy
        ([c("busy", 1), c("new", None), c("idle", 0)], 2, ["idle", "new"]),
        # busy ones last, least loaded first
        ([c("b5", 5), c("b1", 1), c("b3", 3)], 2, ["b1", "b3"]),
        # among equals the newest goes first
        ([c("old", 0, 1.0), c("new", 0, 9.0), c("mid", 0, 5.0)], 2, ["new", "mid"]),
        # nothing to stop
        ([c("a", 0)], 0, []),
        # asking for more than there are stops them all, cheapest first
        ([c("busy", 2), c("idle", 0)], 5, ["idle", "busy"]),
    ],
)
def test_choose_to_stop(candidates: list[Candidate], count: int, expected: list[str]) -> None:
    assert choose_to_stop(candidates, count) == expected


def test_a_busy_worker_is_stopped_only_when_no_idle_one_is_left() -> None:
    pool = [c(f"idle-{i}", 0) for i in range(3)] + [c("busy", 7)]
    assert "busy" not in choose_to_stop(pool, 3)
    assert choose_to_stop(pool, 4)[-1] == "busy"
