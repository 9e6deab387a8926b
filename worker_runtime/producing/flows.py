"""Flows: a parent job that runs once all its children have finished, with their results.

A flow lives in one queue (its keys share one hash tag, so adding it, finishing a child and
readying the parent are each one atomic script, on Redis Cluster too). The parent waits in
state ``waiting-children``; each child's acknowledgement stores its result for the parent and
the last one readies it. A child that fails for good (or is cancelled) applies the parent's
``on_child_failure`` policy: ``"fail"`` (default) fails the parent at once, into the dead-letter
store or the failed set like any failure of that queue; ``"ignore"`` records the error
(`children_failures`) and the parent runs when the rest have finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from redis.exceptions import ResponseError

from worker_runtime.core.codec import encode_payload
from worker_runtime.core.keys import QueueKeys
from worker_runtime.producing.control_scripts import ControlScripts
from worker_runtime.producing.job_spec import (
    InvalidJobSpec,
    JobSpec,
    job_arguments,
    new_job_id,
    priority_argument,
)


class FlowQueue(Protocol):
    """What adding a flow needs of a `Queue` (a protocol: the queue module imports this one)."""

    @property
    def keys(self) -> QueueKeys: ...
    @property
    def control(self) -> ControlScripts: ...


class ParentJob(Protocol):
    """What reading a parent's children needs of a running `Job` (the consuming side imports
    this module, not the other way round)."""

    @property
    def id(self) -> str: ...
    @property
    def _consumer(self) -> Any: ...


ChildFailurePolicy = Literal["fail", "ignore"]
#: Children per flow: one script call adds them all.
MAX_CHILDREN = 10_000


@dataclass(frozen=True, slots=True)
class Flow:
    """What `Queue.enqueue_flow` added: ``added`` is False when the parent id existed."""

    parent_id: str
    children_ids: list[str]
    added: bool


async def enqueue_flow(
    queue: FlowQueue,
    *,
    parent: Any,
    children: Sequence[JobSpec | Any],
    parent_id: str | None = None,
    priority: int = 0,
    on_child_failure: ChildFailurePolicy = "fail",
) -> Flow:
    if on_child_failure not in ("fail", "ignore"):
        raise InvalidJobSpec(
            f"on_child_failure: must be 'fail' or 'ignore', got {on_child_failure!r}"
        )
    if not children:
        raise InvalidJobSpec("children: a flow needs at least one child")
    if len(children) > MAX_CHILDREN:
        raise InvalidJobSpec(f"children: at most {MAX_CHILDREN} per flow, got {len(children)}")
    pid = parent_id or new_job_id()
    argv: list[str | int] = [
        pid,
        encode_payload(parent),
        priority_argument(priority),
        on_child_failure,
    ]
    ids: list[str] = []
    for item in children:
        spec = item if isinstance(item, JobSpec) else JobSpec(data=item)
        child_id, quad = job_arguments(spec)
        if child_id == pid or child_id in ids:
            raise InvalidJobSpec(f"children: job id {child_id!r} appears twice in the flow")
        ids.append(child_id)
        argv += quad
    k = queue.keys
    keys = [k.wait, k.delayed, k.marker, k.stats, k.job_prefix, k.prioritized, k.flows]
    try:
        added = await queue.control.flow(keys=keys, args=argv)
    except ResponseError as exc:
        if "exists already" in str(exc):
            raise InvalidJobSpec(f"children: {exc}") from None
        raise
    return Flow(parent_id=pid, children_ids=ids, added=bool(added))


async def children_results(job: ParentJob) -> dict[str, Any]:
    """The results of a parent job's children: child id -> result (None for no result)."""
    import json

    consumer = _consumer_of(job)
    raw: dict[str, str] = await consumer.redis.hgetall(consumer.keys.children_prefix + job.id)
    return {child: json.loads(value) for child, value in raw.items()}


async def children_failures(job: ParentJob) -> dict[str, str]:
    """Errors of the children a parent with ``on_child_failure="ignore"`` went on without."""
    consumer = _consumer_of(job)
    raw: dict[str, str] = await consumer.redis.hgetall(consumer.keys.child_failures_prefix + job.id)
    return dict(raw)


def _consumer_of(job: ParentJob) -> Any:
    if job._consumer is None:
        raise RuntimeError("children_results() needs a job run by a worker")
    return job._consumer
