"""Fuzzing the manifest loader: any text or mapping gives a valid WorkerPool or the documented
one-line ManifestError, never another exception; a valid pool round-trips."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from tests.unit.core.fuzz_settings import FUZZ
from worker_runtime.core.spec import ManifestError, WorkerPool, load_workerpool

VALID: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "WorkerPool",
    "metadata": {"name": "emails", "namespace": "default"},
    "spec": {
        "image": "registry.example/emails:1.4",
        "app": "emails.tasks:worker",
        "queues": ["emails"],
        "concurrency": 10,
        "retry": {"attempts": 3, "backoff": {"type": "exponential", "delaySeconds": 2}},
        "rateLimit": {"max": 50, "perSeconds": 1},
        "redis": {"url": "redis://redis:6379/0"},
        "scaling": {"minReplicas": 0, "maxReplicas": 20, "targetBacklogPerReplica": 100},
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    },
}
PATHS = [
    (), ("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("spec",),
    ("spec", "image"), ("spec", "app"), ("spec", "queues"), ("spec", "concurrency"),
    ("spec", "retry"), ("spec", "retry", "backoff"), ("spec", "retry", "backoff", "type"),
    ("spec", "rateLimit"), ("spec", "rateLimit", "max"), ("spec", "redis"),
    ("spec", "redis", "url"), ("spec", "scaling"), ("spec", "scaling", "maxReplicas"),
    ("spec", "env"), ("spec", "resources", "requests", "cpu"), ("spec", "timeoutSeconds"),
    ("spec", "replicas"), ("spec", "tolerations"), ("spec", "nodeSelector"), ("status",),
]  # fmt: skip

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["", "-1", "1e9", "0x10", "100m", "1Gi", "nan", "redis://x:0/99"])
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)


def _with(manifest: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(manifest)
    node = out
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return out


def _loads_or_one_line_error(source: Any) -> WorkerPool | None:
    try:
        return load_workerpool(source)
    except ManifestError as exc:
        message = str(exc)
    assert "\n" not in message
    assert message.startswith("invalid WorkerPool: ")
    return None


@FUZZ
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
@example(edits=[((), {"\n": None})])  # found by this test: the error spanned two lines
def test_any_mapping_gives_a_pool_or_a_one_line_error(
    edits: list[tuple[tuple[str, ...], Any]],
) -> None:
    manifest: Any = VALID
    for path, value in edits:
        manifest = _with(manifest, path, value) if isinstance(manifest, dict) else value
    pool = _loads_or_one_line_error(manifest)
    if pool is not None:  # valid: the wire form loads back to the same pool
        assert load_workerpool(pool.to_manifest()) == pool


@FUZZ
@given(
    text=st.text(max_size=200) | values.map(lambda v: yaml.safe_dump(_with(VALID, ("spec",), v)))
)
def test_any_text_gives_a_pool_or_a_one_line_error(text: str) -> None:
    _loads_or_one_line_error(text)
    _loads_or_one_line_error(text.encode("utf-8", "surrogatepass"))
