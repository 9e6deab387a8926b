"""A pool's status, from what the loop knows: worked out each tick, written when it is due.

``change`` says what to write (or nothing: unchanged, or only live figures that must wait their
turn, status_pacing.py); ``write`` sends it. Most busy pools of a large fleet differ from their
last written status in live figures only, and most of the time they wait: that case is told
from the facts alone, without rendering the whole status. Errors are also posted as Events
here, once per change (``report``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shoal_operator.conditions import (
    Problem,
    StatusFacts,
    deployment_problem,
    ignored_replicas_message,
    live_figures,
    pool_status,
    same_but_live,
    status_patch,
)
from shoal_operator.events import EventRecorder
from shoal_operator.kube import KubeApi
from shoal_operator.kube import workerpool_status_path as status_path
from shoal_operator.state import PoolState
from shoal_operator.status_pacing import LIVE_FIELDS, StatusPacer, live_only
from shoal_operator.telemetry import Telemetry
from worker_runtime.core.observations import Observations

#: A status to write: (the new status, the merge patch to it, the facts it was made from)
StatusChange = tuple[dict[str, Any], dict[str, Any], StatusFacts]


def _ignored_replicas(state: PoolState) -> int | None:
    """spec.replicas of a pool in Auto mode (written by kubectl scale or an HPA): unused."""
    spec = state.pool.spec if state.pool else None
    return spec.replicas if spec is not None and spec.scaling.mode == "Auto" else None


class StatusWriter:
    def __init__(
        self,
        *,
        api: KubeApi,
        events: EventRecorder,
        telemetry: Telemetry,
        pacer: StatusPacer,
        wall: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._events = events
        self._telemetry = telemetry
        self.pacer = pacer
        self._wall = wall

    def report(self, state: PoolState) -> None:
        """Events for errors as they appear, change or clear (not once per tick)."""
        for kind, reason, resolved, message in (
            ("spec", "InvalidSpec", "SpecValid", state.spec_error),
            ("reconcile", "ReconcileFailed", "Reconciled", state.reconcile_error),
            ("config", "RedisConfigInvalid", "RedisConfigValid", state.secret_error),
            ("replicas", "ReplicasIgnored", "ReplicasIgnoredNoMore",
             ignored_replicas_message(_ignored_replicas(state))),
            ("conflict", "QueueConflict", "QueueConflictResolved", state.conflict),
        ):  # fmt: skip
            self._events.report(state, kind=kind, reason=reason, message=message, resolved=resolved)
        failure = state.workload.failure if state.workload else None
        problem = deployment_problem(state.name, failure) if failure else None
        self._events.report(state, kind="deployment",
                            reason=problem.reason if problem else "DeploymentFailed",
                            message=problem.message if problem else None,
                            resolved="DeploymentRecovered")  # fmt: skip

    def change(self, state: PoolState, obs: Observations | None) -> StatusChange | None:
        """The status to write now; None when it has not changed or its turn has not come."""
        self.report(state)
        facts = self.facts(state, obs)
        known, paced = state.status_facts, False
        if known is not None and known[1] is state.status and same_but_live(known[0], facts):
            # Everything but the live figures as last written: they alone can differ, which
            # is told without rendering the whole status (most busy pools wait their turn).
            live = live_figures(facts)
            if all(state.status.get(k) == live.get(k) for k in LIVE_FIELDS):
                return None
            if not self.pacer.allow(state.key, prompt=False):
                state.touched = True  # only live figures changed: written on a later tick
                return None
            paced = True
        new = pool_status(facts, state.status, now=self._wall())
        patch = status_patch(state.status, new)
        if patch is None:
            state.status_facts = (facts, state.status)
            return None
        if not paced and not self.pacer.allow(state.key, prompt=not live_only(patch, state.status)):
            state.touched = True  # only live figures changed: written on a later tick
            return None
        return new, patch, facts

    async def write(self, state: PoolState, change: StatusChange) -> None:
        new, patch, facts = change
        path = status_path(state.namespace, state.name)
        await self._api.merge_patch(path, {"status": patch}, decoded=False)  # reply unused
        self._telemetry.status_writes.inc()
        state.status, state.status_facts = new, (facts, new)

    def facts(self, state: PoolState, obs: Observations | None) -> StatusFacts:
        problems: list[Problem] = []
        if state.spec_error is not None:
            problems.append(Problem("InvalidSpec", state.spec_error))
        if state.reconcile_error is not None:
            problems.append(Problem("ReconcileFailed", state.reconcile_error))
        if state.secret_error is not None:
            problems.append(Problem("RedisConfigInvalid", state.secret_error))
        elif obs is not None and obs.error is not None:  # an unread config is reported above
            problems.append(Problem("RedisUnavailable", obs.error))
        if state.conflict is not None:
            problems.append(Problem("QueueConflict", state.conflict))
        failure = state.workload.failure if state.workload else None
        if failure is not None:
            problems.append(deployment_problem(state.name, failure))
        seen, decision = state.observation, state.decision
        spec = state.pool.spec if state.pool else None
        # An invalid spec was observed too (and found invalid): its generation is the one the
        # conditions describe, though no child was reconciled for it.
        generation = state.generation if state.spec_error else state.reconciled_generation
        return StatusFacts(
            name=state.name,
            observed_generation=generation,
            ignored_replicas=_ignored_replicas(state),
            workload=state.workload,
            mode=spec.scaling.mode if spec else "Auto",
            max_replicas=spec.scaling.max_replicas if spec else 1,
            desired=state.desired,
            wanted=decision.wanted if decision else None,
            backlog=seen.backlog if seen else None,
            in_flight=seen.in_flight if seen else None,
            oldest_job_age_seconds=seen.oldest_waiting_age_seconds if seen else None,
            last_scale_time=state.last_scale_time,
            last_scale_reason=state.last_scale_reason,
            problems=tuple(problems),
        )
