"""The tick report as a JSON line and as a rich screen."""

from __future__ import annotations

import io
import json

from rich.console import Console

from worker_runtime.supervisor.report import Event, QueueRow, RunSummary, TickReport, WorkerRow
from worker_runtime.supervisor.view import JsonLinesView, LiveView, open_view, render


def report(**changes: object) -> TickReport:
    base = TickReport(
        t=12.5,
        pool="emails",
        desired_replicas=3,
        replicas=2,
        ready_replicas=1,
        draining=1,
        backlog=1200,
        in_flight=15,
        queues=[QueueRow(queue="emails", waiting=1150, due_delayed=50, active=15,
                         arrival_rate=41.2, finish_rate=30.0, oldest_waiting_seconds=4.2)],
        workers=[
            WorkerRow(name="up-emails-0", pid=101, state="running", in_flight=10, capacity=10,
                      restarts=0, up_seconds=30.0),
            WorkerRow(name="up-emails-1", pid=None, state="backoff", in_flight=None, capacity=10,
                      restarts=2, up_seconds=None, restart_in_seconds=4.0),
            WorkerRow(name="up-emails-2", pid=103, state="draining", in_flight=5, capacity=10,
                      restarts=0, up_seconds=50.0),
        ],
        reason="backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3",
        last_scale_reason="backlog 1200, 41 jobs/s arriving, drain in 30 s -> 3",
        last_scale_seconds_ago=2.0,
        observation_error=None,
        phase="running",
        events=[Event(t=10.0, kind="crashed", worker="up-emails-1", message="exit code 1")],
    )  # fmt: skip
    return base.model_copy(update=changes)


def test_json_lines_are_one_object_each_with_status_names() -> None:
    out = io.StringIO()
    with JsonLinesView(out) as view:
        view.tick(report())
        view.tick(report(t=13.5))
        view.summary(RunSummary(pool="emails", seconds=20, peak_replicas=3, starts=4, crashes=1,
                                kills=0, message="done"))  # fmt: skip
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    first, _, last = (json.loads(line) for line in lines)
    assert first["kind"] == "tick"
    assert (first["desiredReplicas"], first["readyReplicas"]) == (3, 1)
    assert first["lastScaleReason"].endswith("-> 3")
    assert first["queues"][0]["arrivalRate"] == 41.2
    assert first["workers"][1]["restartInSeconds"] == 4.0
    assert last == {
        "kind": "summary", "pool": "emails", "seconds": 20.0, "peakReplicas": 3,
        "starts": 4, "crashes": 1, "kills": 0, "jobs": None, "message": "done",
    }  # fmt: skip


def test_the_screen_shows_queues_workers_load_and_the_reason() -> None:
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(render(report(), report().events, title="shoal up"))
    text = console.export_text()
    assert "shoal up emails" in text
    assert "3 desired / 2 running (1 ready), 1 draining" in text
    for shown in ("1,150", "41.2", "10/10", "restart in 4s", "draining"):
        assert shown in text
    assert "drain in 30 s -> 3" in text
    assert "crashed  up-emails-1 exit code 1" in text


def test_the_screen_says_when_observations_fail_and_when_empty() -> None:
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(render(report(observation_error="Redis down", workers=[]), [], title="t"))
    text = console.export_text()
    assert "observation failed: Redis down" in text
    assert "no workers (scaled to zero)" in text


def test_auto_mode_is_json_off_a_terminal() -> None:
    assert isinstance(open_view("auto", title="t", stream=io.StringIO()), JsonLinesView)
    assert isinstance(open_view("live", title="t", stream=io.StringIO()), LiveView)
