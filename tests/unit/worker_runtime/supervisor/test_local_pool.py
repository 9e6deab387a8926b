"""Manifests as `shoal up` loads them, and the demo's pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker_runtime.core.spec import ManifestError, load_workerpool
from worker_runtime.supervisor.demo import DEMO_MANIFEST, bursts, demo_pool
from worker_runtime.supervisor.local_pool import load_local_pool, local_warnings
from worker_runtime.supervisor.redis_target import RedisTarget

REPO = Path(__file__).resolve().parents[4]

VALID = """
apiVersion: shoal.dev/v1alpha1
kind: WorkerPool
metadata: {name: emails}
spec: {image: x, app: "app:worker", queues: [emails]}
"""


def test_a_valid_manifest_loads() -> None:
    assert load_local_pool(VALID).spec.app == "app:worker"


def test_app_is_required_locally() -> None:
    with pytest.raises(ManifestError) as err:
        load_local_pool(VALID.replace('app: "app:worker", ', ""))
    assert err.value.problems == (("spec.app", err.value.problems[0][1]),)
    assert "required by shoal up" in str(err.value)


def test_a_missing_app_is_named_with_every_other_bad_field() -> None:
    text = VALID.replace('app: "app:worker", ', "concurrency: 0, ")
    with pytest.raises(ManifestError) as err:
        load_local_pool(text)
    assert [p for p, _ in err.value.problems] == ["spec.concurrency", "spec.app"]
    assert "\n" not in str(err.value)


def test_local_warnings_name_the_fields_a_laptop_ignores() -> None:
    pool = load_local_pool(VALID.replace("queues: [emails]", "queues: [emails], "
                                         "resources: {requests: {cpu: 100m}}"))  # fmt: skip
    target = RedisTarget(None, "private", ["spec.redis.x: y"])
    assert [w.split(":")[0] for w in local_warnings(pool, target, {})] == [
        "spec.redis.x",
        "spec.resources",
    ]


def test_examples_local_demo_is_the_demo_pool() -> None:
    example = load_workerpool((REPO / "examples" / "local-demo.yaml").read_text())
    assert example == demo_pool() == load_workerpool(DEMO_MANIFEST)
    assert demo_pool(max_replicas=8).spec.scaling.max_replicas == 8
    assert DEMO_MANIFEST["spec"]["scaling"]["maxReplicas"] == 4  # not changed by demo_pool


@pytest.mark.parametrize(
    ("jobs", "duration", "expected"),
    [
        (2000, 10, [(0, 667), (5, 667), (10, 666)]),
        (2, 10, [(0, 1), (10, 1)]),
        (1, 10, [(0, 1)]),
        (9, 0, [(0, 3), (0, 3), (0, 3)]),
    ],
)
def test_bursts(jobs: int, duration: float, expected: list[tuple[float, int]]) -> None:
    assert bursts(jobs, duration) == expected
    assert sum(n for _, n in bursts(jobs, duration)) == jobs
