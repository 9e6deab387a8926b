"""Status and conditions from facts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shoal_operator.conditions import (
    DeploymentFailure,
    Problem,
    StatusFacts,
    Workload,
    condition,
    deployment_failure,
    deployment_problem,
    pool_status,
    status_patch,
)
from worker_runtime.core.spec import WorkerPoolStatus

NOW = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)


def facts(**kw: object) -> StatusFacts:
    base: dict[str, object] = {
        "name": "emails",
        "observed_generation": 4,
        "workload": Workload(spec_replicas=2, replicas=2, ready_replicas=2),
        "max_replicas": 20,
        "desired": 2,
        "backlog": 0,
        "in_flight": 0,
        "oldest_job_age_seconds": 0.0,
    }
    return StatusFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_status_has_every_field_of_the_design_notes_and_validates() -> None:
    s = pool_status(
        facts(backlog=1200, in_flight=20, oldest_job_age_seconds=4.23, desired=3,
              last_scale_time=NOW, last_scale_reason="backlog 1200 -> 3"),
        None, now=NOW,
    )  # fmt: skip
    assert s["replicas"] == 2
    assert s["readyReplicas"] == 2
    assert s["desiredReplicas"] == 3
    assert s["backlog"] == 1200
    assert s["inFlight"] == 20
    assert s["oldestJobAgeSeconds"] == 4.2
    assert s["selector"] == "shoal.dev/pool=emails"
    assert s["lastScaleTime"] == "2026-11-29T08:00:00Z"
    assert s["lastScaleReason"] == "backlog 1200 -> 3"
    assert s["observedGeneration"] == 4
    assert [c["type"] for c in s["conditions"]] == ["Ready", "Scaling", "Degraded"]
    for c in s["conditions"]:
        assert c["observedGeneration"] == 4
        assert c["lastTransitionTime"] == "2026-11-29T08:00:00Z"
        assert c["reason"]
        assert c["message"]
    WorkerPoolStatus.model_validate(s)  # the CRD's own model accepts it


@pytest.mark.parametrize(
    ("workload", "status", "reason"),
    [
        (Workload(2, 2, 2), "True", "PodsReady"),
        (Workload(3, 3, 1), "False", "PodsNotReady"),
        (Workload(0, 0, 0), "True", "ScaledToZero"),
        (None, "False", "DeploymentMissing"),
    ],
)
def test_ready(workload: Workload | None, status: str, reason: str) -> None:
    c = condition(pool_status(facts(workload=workload), None, now=NOW), "Ready")
    assert c is not None
    assert (c["status"], c["reason"]) == (status, reason)


@pytest.mark.parametrize(
    ("kw", "status", "reason", "message"),
    [
        ({"desired": 2}, "False", "Stable", "steady at 2 workers"),
        ({"desired": 5}, "True", "ScalingUp", "2 -> 5 workers"),
        ({"desired": 0}, "True", "ScalingDown", "2 -> 0 workers"),
        ({"workload": Workload(4, 2, 2), "desired": 4}, "True", "ScalingUp", "2 -> 4 workers"),
        ({"desired": 20, "wanted": 30, "workload": Workload(20, 20, 20)}, "False",
         "LimitedByMaxReplicas", "wants 30, maxReplicas 20"),
        ({"mode": "Manual"}, "False", "Manual", "Manual mode: 2 workers from spec.replicas"),
    ],
)  # fmt: skip
def test_scaling(kw: dict[str, object], status: str, reason: str, message: str) -> None:
    c = condition(pool_status(facts(**kw), None, now=NOW), "Scaling")
    assert c is not None
    assert (c["status"], c["reason"], c["message"]) == (status, reason, message)


def test_degraded_names_every_problem() -> None:
    problems = (Problem("RedisUnavailable", "Redis unreachable: refused"),
                Problem("ReconcileFailed", "apply failed"))  # fmt: skip
    c = condition(pool_status(facts(problems=problems), None, now=NOW), "Degraded")
    assert c is not None
    assert c["status"] == "True"
    assert c["reason"] == "RedisUnavailable"
    assert c["message"] == "Redis unreachable: refused; apply failed"
    ok = condition(pool_status(facts(), None, now=NOW), "Degraded")
    assert ok is not None
    assert (ok["status"], ok["reason"]) == ("False", "AsExpected")


def test_invalid_spec_is_not_ready() -> None:
    s = pool_status(facts(problems=(Problem("InvalidSpec", "spec.image: required"),)), None,
                    now=NOW)  # fmt: skip
    ready = condition(s, "Ready")
    assert ready is not None
    assert ready["reason"] == "InvalidSpec"


def test_transition_time_kept_while_status_holds_and_moved_when_it_flips() -> None:
    first = pool_status(facts(), None, now=NOW)
    later = NOW + timedelta(minutes=5)
    same = pool_status(facts(desired=2), first, now=later)
    assert same == first
    assert status_patch(first, same) is None
    flipped = pool_status(facts(desired=4), first, now=later)
    scaling = condition(flipped, "Scaling")
    ready = condition(flipped, "Ready")
    assert scaling is not None
    assert ready is not None
    assert scaling["lastTransitionTime"] == "2026-11-29T08:05:00Z"
    assert ready["lastTransitionTime"] == "2026-11-29T08:00:00Z"


def test_patch_only_on_change_and_nulls_removed_fields() -> None:
    old = pool_status(facts(backlog=10), None, now=NOW)
    assert status_patch(old, old) is None
    new = pool_status(facts(backlog=None), old, now=NOW)
    patch = status_patch(old, new)
    assert patch is not None
    assert patch["backlog"] is None  # merge patch: null removes the field
    assert status_patch(None, new) == new


def test_job_age_is_coarser_as_it_grows() -> None:
    assert pool_status(facts(oldest_job_age_seconds=3.14), None, now=NOW)[
        "oldestJobAgeSeconds"] == 3.1  # fmt: skip
    assert pool_status(facts(oldest_job_age_seconds=123.4), None, now=NOW)[
        "oldestJobAgeSeconds"] == 123.0  # fmt: skip


def test_a_deployment_that_cannot_create_pods_degrades_the_pool() -> None:
    quota = [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
             {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
              "message": 'pods "emails-1" is forbidden: exceeded quota: none'}]  # fmt: skip
    failure = deployment_failure(quota)
    assert failure == DeploymentFailure(
        "ReplicaFailure", 'pods "emails-1" is forbidden: exceeded quota: none'
    )
    deadline = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "emails-1" has timed out progressing.'}]  # fmt: skip
    assert deployment_failure(deadline) == DeploymentFailure(
        "ProgressDeadlineExceeded", 'ReplicaSet "emails-1" has timed out progressing.'
    )
    healthy = [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
    assert deployment_failure(healthy) is None
    assert failure is not None
    s = pool_status(facts(problems=(deployment_problem("emails", failure),)), None, now=NOW)
    degraded = condition(s, "Degraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "ReplicaFailure")
    assert "Deployment emails: pods" in degraded["message"]


def test_replicas_an_auto_pool_ignores_are_named_in_the_scaling_condition() -> None:
    s = pool_status(facts(ignored_replicas=5), None, now=NOW)
    scaling = condition(s, "Scaling")
    assert scaling is not None
    assert (scaling["status"], scaling["reason"]) == ("False", "ReplicasIgnored")
    assert "spec.replicas 5 is ignored in Auto mode" in scaling["message"]
    moving = condition(pool_status(facts(ignored_replicas=5, desired=4), None, now=NOW), "Scaling")
    assert moving is not None
    assert moving["reason"] == "ScalingUp"
    assert "spec.replicas 5 is ignored" in moving["message"]


def test_facts_that_differ_in_live_figures_alone_make_the_same_status_otherwise() -> None:
    from shoal_operator.conditions import StatusFacts, Workload, live_figures, same_but_live

    a = StatusFacts(name="p", observed_generation=1, workload=Workload(1, 1, 1), backlog=5,
                    in_flight=0, oldest_job_age_seconds=12.34)  # fmt: skip
    b = StatusFacts(name="p", observed_generation=1, workload=Workload(1, 1, 1), backlog=6,
                    in_flight=1, oldest_job_age_seconds=13.0)  # fmt: skip
    assert same_but_live(a, b)
    assert not same_but_live(a, StatusFacts(name="p", observed_generation=2, workload=a.workload))
    assert not same_but_live(a, StatusFacts(name="p", observed_generation=1, workload=None))
    assert live_figures(a) == {"backlog": 5, "inFlight": 0, "oldestJobAgeSeconds": 12.0}
    assert live_figures(StatusFacts(name="p", observed_generation=1, workload=None)) == {}
