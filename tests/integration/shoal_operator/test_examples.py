"""Every WorkerPool in examples/ is accepted by the real API server with the generated CRD."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.harness.k8s import KubeCluster

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"minimal.yaml", "production.yaml", "multi-queue.yaml", "scale-to-zero.yaml",
            "manual.yaml"} <= names  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_applies(
    path: Path, kube_cluster: KubeCluster, crd: None, namespace: Callable[..., str]
) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    pools = [d for d in docs if d.get("kind") == "WorkerPool"]
    assert pools, f"{path.name} holds no WorkerPool"
    ns = pools[0]["metadata"].get("namespace")
    if ns is None:
        ns = namespace()
    else:  # the example names its own namespace (production.yaml); it may exist already
        kube_cluster.kubectl("create", "namespace", ns, check=False)
    # Strict validation: an unknown or misspelt field in an example would be refused, not dropped.
    out = kube_cluster.kubectl("apply", "--validate=strict", "-n", ns, "-f", str(path), check=False)
    assert out.returncode == 0, out.stderr
    for pool in pools:
        got = kube_cluster.kubectl(
            "get", "workerpool", pool["metadata"]["name"], "-n", ns, "-o", "yaml"
        )
        spec = yaml.safe_load(got.stdout)["spec"]
        assert spec["queues"] == pool["spec"]["queues"]
        assert spec["image"] == pool["spec"]["image"]
