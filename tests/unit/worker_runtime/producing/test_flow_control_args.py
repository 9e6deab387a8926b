"""Pure argument building for the flow-control scripts: job specs, limits, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.producing.events import parse_entry
from worker_runtime.producing.queue import InvalidJobSpec, JobSpec, job_arguments, when_argument
from worker_runtime.rate_limit import GroupRateLimit, RateLimit, fetch_limit_args


def test_when_argument_forms() -> None:
    assert when_argument(JobSpec(data=None)) == "0"
    assert when_argument(JobSpec(data=None, delay_seconds=1.5)) == "1500"
    assert when_argument(JobSpec(data=None, delay_seconds=-3)) == "0"
    at = datetime(2030, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert when_argument(JobSpec(data=None, run_at=at)) == f"@{round(at.timestamp() * 1000)}"
    assert when_argument(JobSpec(data=None, run_at=1_900_000_000.25)) == "@1900000000250"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JobSpec(data=None, run_at=datetime(2030, 1, 1)), "run_at: a naive datetime"),
        (JobSpec(data=None, run_at=datetime.now(UTC), delay_seconds=2), "run_at: give either"),
        (JobSpec(data=None, run_at="tomorrow"), "run_at: expected a datetime"),  # type: ignore[arg-type]
        (JobSpec(data=None, delay_seconds=float("nan")), "delay_seconds: must be a finite"),
        (JobSpec(data=None, priority=1_000_001), "priority: must be between"),
        (JobSpec(data=None, priority=1.5), "priority: must be an integer"),  # type: ignore[arg-type]
        (JobSpec(data=None, priority=True), "priority: must be an integer"),
    ],
)
def test_bad_job_specs_name_the_field(spec: JobSpec, message: str) -> None:
    with pytest.raises(InvalidJobSpec, match=message):
        job_arguments(spec)


def test_job_arguments_quadruple() -> None:
    job_id, quad = job_arguments(JobSpec(data={"a": 1}, id="x", priority=-7))
    assert (job_id, quad) == ("x", ["x", '{"a":1}', "0", -7])


def test_fetch_limit_args() -> None:
    assert fetch_limit_args(None, None) == [0, 1000, "", 0, 1000]
    group = GroupRateLimit(key="tenant", max=5, per_seconds=2.5)
    assert fetch_limit_args(RateLimit(max=50), group) == [50, 1000, "tenant", 5, 2500]


def test_worker_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_RATE_LIMIT", '{"max": 50, "perSeconds": 0.5}')
    defaults = WorkerSettings().queue_defaults()
    assert defaults.rate_limit == RateLimit(max=50, per_seconds=0.5)
    # A processor's own explicit setting wins (None = unlimited), as for the other fields.
    own = QueueConfig(rate_limit=None)
    explicit = {f: getattr(own, f) for f in own.model_fields_set}
    assert defaults.model_copy(update=explicit).rate_limit is None


def test_bad_rate_limits_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_RATE_LIMIT", '{"max": 0}')
    with pytest.raises(ValidationError, match=r"WORKER_RATE_LIMIT\.max"):
        WorkerSettings()
    with pytest.raises(ValidationError, match=r"group_rate_limit\.key"):
        QueueConfig.model_validate({"group_rate_limit": {"max": 3}})


def test_event_entries_expand_batches() -> None:
    batch = parse_entry("q", "1700000000000-0", {"e": "completed", "ids": '["a","b"]'})
    assert [(e.event, e.job_id, e.at_ms) for e in batch] == [
        ("completed", "a", 1_700_000_000_000),
        ("completed", "b", 1_700_000_000_000),
    ]
    (retried,) = parse_entry("q", "5-1", {"e": "retried", "id": "a", "attempt": "2", "delay": "0"})
    assert retried.to_json() == {
        "event": "retried", "queue": "q", "id": "a", "at_ms": 5, "attempt": 2, "delay": 0,
        "stream_id": "5-1",
    }  # fmt: skip
    (progress,) = parse_entry("q", "6-0", {"e": "progress", "id": "a", "progress": '{"p":1}'})
    assert progress.to_json()["progress"] == {"p": 1}


def test_key_names_the_scripts_derive_match_core_keys() -> None:
    """fetch.lua, complete.lua, reclaim.lua and observe.lua derive these from the names they
    are given."""
    from worker_runtime.core.keys import QueueKeys

    k = QueueKeys("q")
    base = k.wait.removesuffix("wait")
    assert k.job_prefix == base + "job:"
    derived = {
        "prio": k.prioritized, "stats": k.stats, "rate": k.rate, "grate:": k.group_rate_prefix,
        "gpark:": k.group_parked_prefix, "glimited": k.limited_groups, "events": k.events,
        "wait": k.wait, "marker": k.marker, "flows": k.flows, "kids:": k.children_prefix,
        "kidfail:": k.child_failures_prefix, "lclock": k.lease_clock,
        "fetched:": k.fetch_receipts_prefix,
    }  # fmt: skip
    assert {suffix: base + suffix for suffix in derived} == derived


def test_cron_names_are_unique_per_queue() -> None:
    from worker_runtime.core.cron_schedule import CronJob

    with pytest.raises(ValidationError, match=r"cron\n.*unique per queue: \*/5 \* \* \* \*"):
        QueueConfig(cron=(CronJob(schedule="*/5 * * * *"), CronJob(schedule="*/5 * * * *")))
    QueueConfig(cron=(CronJob(schedule="*/5 * * * *"), CronJob(name="b", schedule="*/5 * * * *")))
