"""ObserverGroup calls each member's own hooks exactly once, and isolates a raising member."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from worker_runtime.consuming.observers import Completion, WorkerObserver
from worker_runtime.consuming.processor import Job
from worker_runtime.observing.observability import ObserverGroup


class PerJob(WorkerObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        self.calls.append(f"one {job.id}")


class Batched(WorkerObserver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        self.calls.append(f"batch {queue} {len(completions)}")


class Both(PerJob, Batched):
    def __init__(self) -> None:
        self.calls = []


class Raising(WorkerObserver):
    def job_completed(self, job: Job[Any], *, duration: float, result: Any) -> None:
        raise RuntimeError("bug")

    def jobs_completed(self, queue: str, completions: Sequence[Completion]) -> None:
        raise RuntimeError("bug")


def _job(job_id: str) -> Job[Any]:
    return Job(id=job_id, queue="q", data=None, attempt=1, attempts_made=0, stalls=0, raw="{}",
               started_at=time.time(), _consumer=None)  # fmt: skip


def test_each_member_gets_the_hooks_it_implements_once() -> None:
    per_job, batched, both = PerJob(), Batched(), Both()
    group = ObserverGroup([Raising(), per_job, batched, both, WorkerObserver()])
    jobs = [_job("a"), _job("b")]
    for job in jobs:
        group.job_completed(job, duration=0.1, result=None)
    group.jobs_completed("q", [(job, 0.1, None) for job in jobs])
    assert per_job.calls == ["one a", "one b"]
    assert batched.calls == ["batch q 2"]
    assert both.calls == ["one a", "one b", "batch q 2"]


def test_a_hook_nobody_implements_is_the_base_no_op() -> None:
    group = ObserverGroup([Batched()])
    group.job_completed(_job("a"), duration=0.1, result=None)  # no error, nothing to call
    assert group.job_completed.__func__ is WorkerObserver.job_completed  # type: ignore[attr-defined]
