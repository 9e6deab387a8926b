"""WorkerPool objects as pool rows (pure)."""

from __future__ import annotations

from shoal.dashboard.pools import PoolHistory, PoolPoint, PoolRow, pool_row, pools_path


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


def _row(name: str, *, ready: int, desired: int | None, backlog: int | None) -> PoolRow:
    status = {"readyReplicas": ready, "replicas": ready, "desiredReplicas": desired,
              "backlog": backlog}  # fmt: skip
    return pool_row({"metadata": {"namespace": "ns", "name": name}, "status": status})


def test_pool_history_keeps_the_window_and_forgets_deleted_pools() -> None:
    history = PoolHistory(window_ms=10_000)
    for second in range(0, 21, 5):
        history.add([_row("a", ready=second, desired=None, backlog=None),
                     _row("b", ready=1, desired=2, backlog=100)], now_ms=second * 1000)  # fmt: skip
    assert [p.at_ms for p in history.points["ns/a"]] == [10_000, 15_000, 20_000]
    assert history.points["ns/a"][-1] == PoolPoint(20_000, 20, 20, 0)  # no decision: replicas
    history.add([_row("b", ready=2, desired=2, backlog=0)], now_ms=25_000)
    assert set(history.points) == {"ns/b"}


def test_pool_chart_puts_ready_and_desired_on_one_scale() -> None:
    history = PoolHistory(window_ms=60_000)
    history.add([_row("a", ready=1, desired=4, backlog=50)], now_ms=0)
    history.add([_row("a", ready=2, desired=4, backlog=0)], now_ms=5000)
    chart = history.chart("ns/a")
    assert chart["desired"].endswith("118.0,1.0 120.0,1.0")  # 4 of 4: the top
    assert chart["ready"].endswith("120.0,12.0")  # 2 of 4: half way up (24 px high)
    assert chart["backlog"].split()[0].endswith(",1.0")  # 50 is its own top
    assert history.chart("ns/none") == {"ready": "", "desired": "", "backlog": ""}
