"""Flows: a parent runs after all its children, with their results; failure policies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.worker_runtime.conftest import fast_settings, running
from worker_runtime import Job, JobSpec, JobState, NonRetryableError, Queue, Worker
from worker_runtime.producing.queue import InvalidJobSpec

pytestmark = pytest.mark.integration


def flow_worker(redis_url: str, queue: str) -> Worker:
    worker = Worker(settings=fast_settings(redis_url))

    @worker.processor(queue)
    async def handle(job: Job[Any]) -> Any:
        if "parent" in job.data:
            return {
                "results": await job.children_results(),
                "failures": await job.children_failures(),
            }
        if job.data.get("fail"):
            raise NonRetryableError(f"child {job.data['n']} broke")
        return job.data["n"] * 10

    return worker


async def test_parent_gets_its_childrens_results(redis_url: str) -> None:
    async with Queue("fl", redis_url=redis_url) as q:
        flow = await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="c1"), JobSpec({"n": 2}, id="c2", delay_seconds=0.2), {"n": 3}],
            parent_id="p1",
            priority=5,
        )
        assert (flow.parent_id, flow.children_ids[:2], flow.added) == ("p1", ["c1", "c2"], True)
        again = await q.enqueue_flow({"parent": 2}, [{"n": 9}], parent_id="p1")
        assert not again.added  # dedup by parent id: nothing added
        rec = await q.get_job("p1")
        assert rec is not None
        assert (rec.state, rec.pending_children, rec.priority) == (
            JobState.WAITING_CHILDREN, 3, 5,
        )  # fmt: skip
        assert (await q.counts())["waiting_children"] == 1
        async with running(flow_worker(redis_url, "fl")):
            done = await q.wait_for("p1", timeout=5)
    assert done.state is JobState.COMPLETED
    assert done.result == {
        "results": {"c1": 10, "c2": 20, flow.children_ids[2]: 30},
        "failures": {},
    }


@pytest.mark.parametrize("policy", ["fail", "ignore"])
async def test_a_failed_child_fails_or_is_ignored_by_its_parent(
    redis_url: str, policy: str
) -> None:
    async with Queue("flf", redis_url=redis_url) as q, running(flow_worker(redis_url, "flf")):
        flow = await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="ok"), JobSpec({"n": 2, "fail": True}, id="bad")],
            on_child_failure=policy,  # type: ignore[arg-type]
        )
        parent = await q.wait_for(flow.parent_id, timeout=5)
    if policy == "fail":
        assert parent.state is JobState.DEAD
        assert parent.error == "child bad failed: child 2 broke"
    else:
        assert parent.state is JobState.COMPLETED
        assert parent.result == {"results": {"ok": 10}, "failures": {"bad": "child 2 broke"}}


async def test_cancelling_a_child_applies_the_policy(redis_url: str) -> None:
    async with Queue("flc", redis_url=redis_url) as q:
        flow = await q.enqueue_flow({"parent": 1}, [{"n": 1}, {"n": 2}], on_child_failure="ignore")
        assert await q.cancel(flow.children_ids[1])
        async with running(flow_worker(redis_url, "flc")):
            parent = await q.wait_for(flow.parent_id, timeout=5)
    assert parent.result == {
        "results": {flow.children_ids[0]: 10},
        "failures": {flow.children_ids[1]: "cancelled"},
    }


async def test_bad_flows_are_refused_whole(redis_url: str) -> None:
    async with Queue("flb", redis_url=redis_url) as q:
        with pytest.raises(InvalidJobSpec, match=r"^children: a flow needs"):
            await q.enqueue_flow({}, [])
        with pytest.raises(InvalidJobSpec, match=r"^on_child_failure: must be"):
            await q.enqueue_flow({}, [{}], on_child_failure="retry")  # type: ignore[arg-type]
        with pytest.raises(InvalidJobSpec, match="appears twice"):
            await q.enqueue_flow({}, [JobSpec({}, id="x"), JobSpec({}, id="x")])
        await q.enqueue({}, id="taken")
        with pytest.raises(InvalidJobSpec, match=r"^children: child job id taken exists"):
            await q.enqueue_flow({}, [JobSpec({}, id="new"), JobSpec({}, id="taken")])
        assert await q.get_job("new") is None  # nothing half-added
        assert (await q.counts())["waiting"] == 1


@pytest.mark.parametrize("policy", ["fail", "ignore"])
async def test_a_malformed_child_takes_its_parents_policy(redis_url: str, policy: str) -> None:
    """A child whose hash holds garbage is dead-lettered by the fetch without running: its
    parent must hear of it like of any failed child (it used to wait for it for ever)."""
    async with Queue("flm", redis_url=redis_url) as q:
        flow = await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="ok"), JobSpec({"n": 2}, id="garbled")],
            on_child_failure=policy,  # type: ignore[arg-type]
        )
        await q.redis.hset(q.keys.job("garbled"), "att", "not a number")
        async with running(flow_worker(redis_url, "flm")):
            parent = await q.wait_for(flow.parent_id, timeout=5)
        child = await q.get_job("garbled")
    assert child is not None
    assert child.state is JobState.DEAD
    assert child.error is not None
    assert child.error.startswith("malformed job: ")
    if policy == "fail":
        assert parent.state is JobState.DEAD
        assert parent.error == f"child garbled failed: {child.error}"
    else:
        assert parent.state is JobState.COMPLETED
        assert parent.result == {"results": {"ok": 10}, "failures": {"garbled": child.error}}


async def test_a_garbage_failures_record_fails_the_parent_instead_of_the_script(
    redis_url: str,
) -> None:
    """Policy 'ignore' keeps a failed child's error under the parent; when that record holds
    garbage, the parent fails (with the child's reason) instead of the script erroring after
    its first writes (the child's failure must still be recorded)."""
    async with Queue("flg", redis_url=redis_url) as q:
        flow = await q.enqueue_flow(
            {"parent": 1},
            [JobSpec({"n": 1}, id="ok"), JobSpec({"n": 2, "fail": True}, id="bad")],
            on_child_failure="ignore",
        )
        await q.redis.set(q.keys.child_failures_prefix + flow.parent_id, "garbage")
        async with running(flow_worker(redis_url, "flg")):
            parent = await q.wait_for(flow.parent_id, timeout=5)
        child = await q.get_job("bad")
    assert child is not None
    assert child.state is JobState.DEAD
    assert parent.state is JobState.DEAD
    assert parent.error == "child bad failed: child 2 broke"


async def test_a_garbage_results_record_fails_the_parent_not_the_ack(redis_url: str) -> None:
    """A completed child's result goes into its parent's results record: when that holds
    garbage, the child still completes and the parent fails with the reason (the ack used to
    error for ever, and the child ran again and again)."""
    async with Queue("flr", redis_url=redis_url) as q:
        flow = await q.enqueue_flow({"parent": 1}, [JobSpec({"n": 1}, id="only")])
        await q.redis.set(q.keys.children_prefix + flow.parent_id, "garbage")
        async with running(flow_worker(redis_url, "flr")):
            parent = await q.wait_for(flow.parent_id, timeout=5)
        child = await q.get_job("only")
    assert child is not None
    assert child.state is JobState.COMPLETED
    assert child.attempts == 1
    assert parent.state is JobState.DEAD
    assert parent.error == (
        "child only completed but its result could not be kept"
        " (the parent's results record is not a hash)"
    )
