"""The in-memory registry, SSA ownership checks and restart safety of the History (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shoal_operator.events import event_body
from shoal_operator.reconciler import initial_replicas, scaler_owns_replicas
from shoal_operator.scaling_loop import seeded_history
from shoal_operator.state import Registry, workload_of
from worker_runtime.core.autoscaler import decide
from worker_runtime.core.observations import History, Observations, QueueObservation


def body(spec: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "emails", "namespace": "team", "uid": "u-1", "generation": 2,
                     "resourceVersion": "7", "managedFields": []},
        "spec": spec if spec is not None else {"image": "emails:1", "queues": ["emails"]},
        "status": status,
    }  # fmt: skip


def test_registry_parses_specs_and_remembers_what_the_last_operator_wrote() -> None:
    reg = Registry()
    state = reg.upsert(body(observedGeneration=2, lastScaleTime="2026-11-29T08:00:00Z",
                            lastScaleReason="backlog 10 -> 1"))  # fmt: skip
    assert state.pool is not None
    assert state.pool.spec.queues == ["emails"]
    assert state.reconciled_generation == 2
    assert state.last_scale_time == datetime(2026, 11, 29, 8, tzinfo=UTC)
    assert state.last_scale_reason == "backlog 10 -> 1"
    assert reg.get(("team", "emails")) is state
    assert reg.upsert(body()) is state  # same uid: same state, history kept


def test_invalid_spec_is_kept_with_a_one_line_reason() -> None:
    state = Registry().upsert(body({"image": "emails:1", "queues": []}))
    assert state.pool is None
    assert state.spec_error is not None
    assert "spec.queues" in state.spec_error
    assert "\n" not in state.spec_error


def test_deployment_seen_before_its_pool_is_not_lost() -> None:
    reg = Registry()
    reg.set_workload(("team", "emails"), workload_of(
        {"spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 2}}))  # fmt: skip
    state = reg.upsert(body())
    assert state.workload is not None
    assert (state.workload.spec_replicas, state.workload.ready_replicas) == (3, 2)
    assert state.deployment_seen


def test_recreated_pool_with_a_new_uid_starts_afresh() -> None:
    reg = Registry()
    old = reg.upsert(body())
    new = body()
    new["metadata"]["uid"] = "u-2"
    assert reg.upsert(new) is not old


def test_scaler_ownership_is_read_from_managed_fields() -> None:
    owned = {"metadata": {"managedFields": [
        {"manager": "shoal-operator", "fieldsV1": {"f:spec": {"f:template": {}}}},
        {"manager": "shoal-operator-scaler", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
    ]}}  # fmt: skip
    not_owned = {"metadata": {"managedFields": [
        {"manager": "shoal-operator", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
    ]}}  # fmt: skip
    assert scaler_owns_replicas(owned)
    assert not scaler_owns_replicas(not_owned)
    assert not scaler_owns_replicas({"metadata": {}})


def test_initial_replicas() -> None:
    reg = Registry()
    auto = reg.upsert(body({"image": "e:1", "queues": ["q"], "scaling": {"minReplicas": 2}}))
    assert initial_replicas(auto) == 2
    auto.desired = 5  # a deleted Deployment comes back at the last decision
    assert initial_replicas(auto) == 5
    manual = Registry().upsert(
        body({"image": "e:1", "queues": ["q"], "scaling": {"mode": "Manual"}, "replicas": 4})
    )
    assert initial_replicas(manual) == 4


def test_restart_with_an_empty_history_does_not_scale_down() -> None:
    spec = Registry().upsert(body({"image": "e:1", "queues": ["q"],
                                   "scaling": {"scaleDownStabilizationSeconds": 60}}))  # fmt: skip
    assert spec.pool is not None
    idle = Observations(current_replicas=5, queues=(QueueObservation("q"),))
    naive = decide(spec.pool.spec, idle, History(), 1000.0)
    assert naive.replicas < 5  # what a restart would do without seeding
    history = seeded_history(5, 1000.0)
    for now in (1000.0, 1001.0, 1030.0, 1059.0):
        decision = decide(spec.pool.spec, idle, history, now)
        assert decision.replicas == 5
        history = decision.history
    later = decide(spec.pool.spec, idle, history, 1061.0)
    assert later.replicas < 5  # the window passed: now it may shrink


def test_event_body_refers_to_the_pool() -> None:
    e = event_body(namespace="team", name="emails", uid="u-1", type="Normal",
                   reason="ScaledUp", message="0 -> 3 workers:\n backlog", now=datetime(
                       2026, 11, 29, 8, tzinfo=UTC), instance="op-0")  # fmt: skip
    assert e["involvedObject"] == {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkerPool",
        "namespace": "team",
        "name": "emails",
        "uid": "u-1",
    }
    assert e["message"] == "0 -> 3 workers: backlog"
    assert e["metadata"] == {"generateName": "emails.", "namespace": "team"}
    assert e["firstTimestamp"] == "2026-11-29T08:00:00Z"
    assert e["reportingInstance"] == "op-0"


def test_only_an_asleep_pool_with_nothing_new_is_skipped() -> None:
    from shoal_operator.conditions import Workload
    from shoal_operator.scaling_loop import asleep_and_unchanged

    state = Registry().upsert(body())
    state.workload, state.desired = Workload(0, 0, 0), 0
    quiet = Observations(current_replicas=0, queues=(QueueObservation("emails"),))
    assert not asleep_and_unchanged(state, quiet)  # touched: status must be redone first
    state.touched, state.last_obs = False, quiet
    assert asleep_and_unchanged(state, quiet)
    arrived = Observations(
        current_replicas=0, queues=(QueueObservation("emails", waiting=1, arrived_total=1),)
    )
    assert not asleep_and_unchanged(state, arrived)  # a job: decide again
    failed = Observations.failed(current_replicas=0, error="down")
    assert not asleep_and_unchanged(state, failed)
    state.workload = Workload(2, 2, 2)
    assert not asleep_and_unchanged(state, quiet)  # running pools are always decided


def test_a_status_echo_reuses_the_parsed_pool_and_a_spec_change_is_parsed_again() -> None:
    reg = Registry()
    state = reg.upsert(body())
    parsed = state.pool
    echo = body(backlog=5)  # our own status write, seen again through the watch
    echo["metadata"] = {**echo["metadata"], "resourceVersion": "8", "managedFields": [{}]}
    assert reg.upsert(echo).pool is parsed
    assert state.touched
    changed = body({"image": "emails:2", "queues": ["emails"]})
    assert reg.upsert(changed).pool is not parsed
    assert state.pool is not None
    assert state.pool.spec.image == "emails:2"
    labelled = body({"image": "emails:2", "queues": ["emails"]})
    labelled["metadata"] = {**labelled["metadata"], "labels": {"team": "mail"}}
    before = state.pool
    assert reg.upsert(labelled).pool is not before  # labels are part of the pool too
    broken = reg.upsert(body({"image": "emails:2"}))
    assert broken.pool is None
    assert broken.spec_error
    assert reg.upsert(body({"image": "emails:2"}, backlog=1)).spec_error == broken.spec_error
