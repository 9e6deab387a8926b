"""WorkerPool objects as pool rows (pure)."""

from __future__ import annotations

from shoal.dashboard.pools import pool_row, pools_path


def test_pool_row_reads_status_and_tolerates_a_pool_without_one() -> None:
    row = pool_row({
        "metadata": {"namespace": "ns", "name": "emails"},
        "spec": {"queues": ["emails"], "scaling": {"mode": "Auto"}},
        "status": {
            "replicas": 2, "readyReplicas": 1, "desiredReplicas": 3, "backlog": 1200,
            "inFlight": 20, "oldestJobAgeSeconds": 4.2, "lastScaleReason": "backlog 1200 -> 3",
            "lastScaleTime": "2026-11-29T08:00:00Z",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodsNotReady"}],
        },
    })  # fmt: skip
    assert (row.key, row.ready, row.replicas, row.desired, row.backlog) == (
        "ns/emails", 1, 2, 3, 1200,
    )  # fmt: skip
    assert row.conditions[0] == {
        "type": "Ready", "status": "False", "reason": "PodsNotReady", "message": "",
    }  # fmt: skip
    bare = pool_row({"metadata": {"namespace": "ns", "name": "new"}, "spec": {"queues": ["a"]}})
    assert (bare.replicas, bare.desired, bare.backlog, bare.last_scale_reason) == (
        0,
        None,
        None,
        "",
    )


def test_pools_path_all_or_one_namespace() -> None:
    assert pools_path(None) == "/apis/shoal.dev/v1alpha1/workerpools"
    assert pools_path("ns") == "/apis/shoal.dev/v1alpha1/namespaces/ns/workerpools"
