"""Flows under admin actions: replaying a dead child, replaying all dead jobs, removing a
child, cancelling a child on a queue without dead-lettering (docs/flow-control.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.async_waiting import eventually
from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobSpec, JobState, NonRetryableError, Queue, QueueConfig, Worker

pytestmark = pytest.mark.integration

LATER = 3600.0  # a sibling that stays delayed for the whole test


def fixable_worker(redis_url: str, queue: str, broken: set[str], **config: Any) -> Worker:
    """Children in ``broken`` fail for good; the others return their ``n``."""
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor(queue, config=QueueConfig(**config))
    async def handle(job: Job[Any]) -> Any:
        if job.id in broken:
            raise NonRetryableError(f"{job.id} broke")
        return job.data.get("n")

    return worker


async def _state(q: Queue, job_id: str) -> JobState | None:
    rec = await q.get_job(job_id)
    return rec.state if rec is not None else None


async def test_replaying_a_dead_child_does_not_count_it_twice(redis_url: str) -> None:
    broken = {"c1"}
    async with Queue("fr1", redis_url=redis_url) as q:
        await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="c1"), JobSpec({"n": 2}, id="c2", delay_seconds=LATER)],
            parent_id="p",
            on_child_failure="ignore",
        )
        async with running(fixable_worker(redis_url, "fr1", broken)):
            await eventually(lambda: _is(q, "c1", JobState.DEAD), timeout=5, description="c1 dead")
            broken.clear()  # fixed: the replay succeeds
            assert await q.replay_dead(["c1"]) == 1
            await eventually(lambda: _is(q, "c1", JobState.COMPLETED), timeout=5,
                             description="c1 completed")  # fmt: skip
            parent = await q.get_job("p")
        failures = await q.redis.hgetall(q.keys.child_failures_prefix + "p")
    # Still waiting for c2 (the replayed c1 counted once, not twice).
    assert parent is not None
    assert (parent.state, parent.pending_children) == (JobState.WAITING_CHILDREN, 1)
    assert failures == {}  # c1's failure no longer stands


async def test_replay_all_leaves_a_parent_its_child_took_down(redis_url: str) -> None:
    async with Queue("fr2", redis_url=redis_url) as q:
        await q.enqueue_flow({"parent": 1}, [JobSpec({"n": 1}, id="c1"), {"n": 2}], parent_id="p")
        async with running(fixable_worker(redis_url, "fr2", {"c1"})):
            await eventually(lambda: _is(q, "p", JobState.DEAD), timeout=5, description="p dead")
        replayed = await q.replay_dead()
        states = (await _state(q, "c1"), await _state(q, "p"))
        dead = await q.dead_letter_ids()
    assert replayed == 1
    assert states == (JobState.WAITING, JobState.DEAD)
    assert dead == ["p"]


async def test_removing_a_child_no_longer_keeps_its_parent_waiting(redis_url: str) -> None:
    async with Queue("fr3", redis_url=redis_url) as q:
        await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="c1"), JobSpec({"n": 2}, id="c2", delay_seconds=LATER)],
            parent_id="p",
        )
        async with running(fixable_worker(redis_url, "fr3", set())):
            await eventually(lambda: _is(q, "c1", JobState.COMPLETED), timeout=5,
                             description="c1 completed")  # fmt: skip
            assert await q.remove("c2")
            await eventually(lambda: _is(q, "p", JobState.COMPLETED), timeout=5,
                             description="parent ran")  # fmt: skip
        results = await q.redis.hgetall(q.keys.children_prefix + "p")
        failures = await q.redis.hgetall(q.keys.child_failures_prefix + "p")
    assert results == {"c1": "1"}
    assert failures == {"c2": "removed"}


async def test_cancel_fails_a_parent_into_failed_when_the_queue_does_not_dead_letter(
    redis_url: str,
) -> None:
    async with Queue("fr4", redis_url=redis_url) as q:
        await q.enqueue_flow(
            {"parent": 1}, [JobSpec({"n": 1}, id="c1", delay_seconds=LATER)], parent_id="p"
        )
        async with running(fixable_worker(redis_url, "fr4", set(), dead_letter=False)):
            assert await q.cancel("c1")
            parent_state = await _state(q, "p")
            counts = await q.counts()
    assert parent_state is JobState.FAILED
    assert counts["dead"] == 0


async def _is(q: Queue, job_id: str, state: JobState) -> bool:
    return await _state(q, job_id) is state
