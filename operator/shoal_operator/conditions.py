"""A WorkerPool's status and its conditions (Ready, Scaling, Degraded), from what is known (pure).

``pool_status`` turns facts into the wire form of ``status`` (camelCase, as in the design notes);
``status_patch`` says what to send, or None when nothing changed, so status is patched only on
change. A condition keeps its lastTransitionTime while its status stays the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from shoal_operator.render import selector_string


@dataclass(frozen=True, slots=True)
class DeploymentFailure:
    """Why the Deployment cannot make its pods: a ReplicaFailure or ProgressDeadlineExceeded."""

    reason: str  # ReplicaFailure | ProgressDeadlineExceeded
    message: str  # the controller's, e.g. pods "x" is forbidden: exceeded quota: ...


@dataclass(frozen=True, slots=True)
class Workload:
    """The worker Deployment as last seen."""

    spec_replicas: int
    replicas: int  # pods that exist
    ready_replicas: int
    failure: DeploymentFailure | None = None


def deployment_failure(conditions: Sequence[Any]) -> DeploymentFailure | None:
    """The failure a Deployment's status.conditions report, if any (quota, PodSecurity, ...)."""
    found = {c.get("type"): c for c in conditions if isinstance(c, Mapping)}
    replica = found.get("ReplicaFailure")
    if replica is not None and replica.get("status") == "True":
        return DeploymentFailure("ReplicaFailure", str(replica.get("message") or "FailedCreate"))
    progressing = found.get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        message = str(progressing.get("message") or "progress deadline exceeded")
        return DeploymentFailure("ProgressDeadlineExceeded", message)
    return None


def deployment_problem(name: str, failure: DeploymentFailure) -> Problem:
    return Problem(failure.reason, f"Deployment {name}: {failure.message}")


def ignored_replicas_message(replicas: int | None) -> str | None:
    """What to tell about spec.replicas set in Auto mode, where nothing reads it."""
    if replicas is None:
        return None
    return (
        f"spec.replicas {replicas} is ignored in Auto mode (kubectl scale and HPAs write it):"
        " set scaling.mode: Manual to use it, or remove it"
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """Something that degrades the pool: CamelCase reason and a one-line message."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class StatusFacts:
    name: str
    observed_generation: int | None  # the last generation the children were reconciled for
    workload: Workload | None
    mode: str = "Auto"
    max_replicas: int = 1
    desired: int | None = None  # the autoscaler's last decision
    wanted: int | None = None  # its recommendation before bounds and stabilisation
    backlog: int | None = None
    in_flight: int | None = None
    oldest_job_age_seconds: float | None = None
    last_scale_time: datetime | None = None
    last_scale_reason: str | None = None
    problems: tuple[Problem, ...] = ()
    ignored_replicas: int | None = None  # spec.replicas of an Auto pool (kubectl scale, an HPA)


_LIVE_FACTS = frozenset({"backlog", "in_flight", "oldest_job_age_seconds"})
_STILL_FIELDS = tuple(f.name for f in fields(StatusFacts) if f.name not in _LIVE_FACTS)


def iso(when: datetime) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes times."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(seconds: float) -> float:
    # Coarser as it grows: a waiting job's age moves every tick, status need not follow each step.
    return round(seconds, 1) if seconds < 10 else float(round(seconds))


def _ready(f: StatusFacts) -> tuple[str, str, str]:
    if any(p.reason == "InvalidSpec" for p in f.problems):
        return "False", "InvalidSpec", "the spec cannot be run; see the Degraded condition"
    w = f.workload
    if w is None:
        return "False", "DeploymentMissing", f"Deployment {f.name} does not exist yet"
    if w.spec_replicas == 0:
        return "True", "ScaledToZero", "no workers needed: scaled to zero"
    text = f"{w.ready_replicas}/{w.spec_replicas} workers ready"
    if w.ready_replicas >= w.spec_replicas:
        return "True", "PodsReady", text
    return "False", "PodsNotReady", text


def _scaling(f: StatusFacts) -> tuple[str, str, str]:
    status, reason, message = _scaling_state(f)
    ignored = ignored_replicas_message(f.ignored_replicas)
    if ignored is None:
        return status, reason, message
    # A scale write nobody reads must not pass silently: say so, whatever else is going on.
    return status, reason if status == "True" else "ReplicasIgnored", f"{message}; {ignored}"


def _scaling_state(f: StatusFacts) -> tuple[str, str, str]:
    w = f.workload
    if w is None:
        return "False", "DeploymentMissing", f"Deployment {f.name} does not exist yet"
    target = f.desired if f.desired is not None else w.spec_replicas
    # A decision not yet applied to the Deployment, else pods still being created or removed.
    current = w.spec_replicas if w.spec_replicas != target else w.replicas
    if current != target:
        reason = "ScalingUp" if target > current else "ScalingDown"
        return "True", reason, f"{current} -> {target} workers"
    if f.mode == "Manual":
        return "False", "Manual", f"Manual mode: {target} workers from spec.replicas"
    if f.wanted is not None and f.wanted > f.max_replicas and target >= f.max_replicas:
        return "False", "LimitedByMaxReplicas", f"wants {f.wanted}, maxReplicas {f.max_replicas}"
    return "False", "Stable", f"steady at {target} workers"


def _degraded(f: StatusFacts) -> tuple[str, str, str]:
    if not f.problems:
        return "False", "AsExpected", "no problems"
    message = "; ".join(p.message for p in f.problems)
    return "True", f.problems[0].reason, message


def _condition(
    kind: str,
    state: tuple[str, str, str],
    previous: Mapping[str, Mapping[str, Any]],
    *,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    status, reason, message = state
    before = previous.get(kind)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": since or iso(now),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    return condition


def pool_status(
    facts: StatusFacts, previous: Mapping[str, Any] | None, *, now: datetime
) -> dict[str, Any]:
    """The full status of a pool (wire form), given the one it has now."""
    before = {
        c["type"]: c
        for c in (previous or {}).get("conditions") or ()
        if isinstance(c, Mapping) and "type" in c
    }
    status: dict[str, Any] = {}
    w = facts.workload
    if w is not None:
        status["replicas"] = w.replicas
        status["readyReplicas"] = w.ready_replicas
    if facts.desired is not None:
        status["desiredReplicas"] = facts.desired
    status.update(live_figures(facts))
    status["selector"] = selector_string(facts.name)
    if facts.last_scale_time is not None:
        status["lastScaleTime"] = iso(facts.last_scale_time)
    if facts.last_scale_reason is not None:
        status["lastScaleReason"] = facts.last_scale_reason[:1024]
    if facts.observed_generation is not None:
        status["observedGeneration"] = facts.observed_generation
    gen = facts.observed_generation
    status["conditions"] = [
        _condition("Ready", _ready(facts), before, generation=gen, now=now),
        _condition("Scaling", _scaling(facts), before, generation=gen, now=now),
        _condition("Degraded", _degraded(facts), before, generation=gen, now=now),
    ]
    return status


def live_figures(facts: StatusFacts) -> dict[str, Any]:
    """The figures of status that move with the queues (backlog, inFlight, oldest job age)."""
    live: dict[str, Any] = {}
    if facts.backlog is not None:
        live["backlog"] = facts.backlog
    if facts.in_flight is not None:
        live["inFlight"] = facts.in_flight
    if facts.oldest_job_age_seconds is not None:
        live["oldestJobAgeSeconds"] = _age(facts.oldest_job_age_seconds)
    return live


def same_but_live(a: StatusFacts, b: StatusFacts) -> bool:
    """Whether ``a`` and ``b`` make the same status but for its live figures."""
    return all(getattr(a, f) == getattr(b, f) for f in _STILL_FIELDS)


def status_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch taking status ``old`` to ``new``; None when they are the same."""
    old = old or {}
    if all(old.get(k) == v for k, v in new.items()) and set(old) <= set(new):
        return None
    patch: dict[str, Any] = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None  # merge patch: null removes
    return patch


def condition(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """One condition of a status, by type."""
    items: Sequence[Any] = (status or {}).get("conditions") or ()
    return next((c for c in items if isinstance(c, Mapping) and c.get("type") == kind), None)
