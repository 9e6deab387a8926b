from worker_runtime import Worker


def test_worker_exposes_the_seed_health_api_before_start() -> None:
    worker = Worker(redis_url="redis://127.0.0.1:1/0")
    health = worker.health()
    assert health.healthy is False  # not started: no heartbeat yet
    assert (health.active_jobs, health.processed_jobs, health.failed_jobs) == (0, 0, 0)
    report = worker.health_report()
    assert report.splitlines()[0] == "=== Worker Health Report ==="
    assert "Status: ✗ UNHEALTHY" in report
