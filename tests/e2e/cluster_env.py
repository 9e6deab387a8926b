"""The cluster an end-to-end run talks to, and the few operations the tests need on it.

Either the real node started here (``RealNodeCluster``), or any cluster named by
``SHOAL_E2E_KUBECONFIG`` (a kind cluster: ``tests/e2e/kind.sh``). Tests see the same object.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.k8s_node import RealNodeCluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "shoal"
CRD_NAME = "workerpools.shoal.dev"
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workerpools"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def split_image(ref: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); a registry port is not a tag."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"SHOAL_E2E_IMAGE: {ref!r} needs an explicit tag (repo:tag)")
    return repo, tag


@dataclass
class E2EEnv:
    """Where the suite runs: kubeconfig, tools, the image, and how pods reach host servers."""

    kubeconfig: Path
    host_address: str  # pods reach servers on the test machine here (Redis binds on it too)
    image: str
    helm_bin: Path
    kubectl_bin: Path
    workdir: Path  # helm's cache/config homes, scratch files
    local: RealNodeCluster | None = None
    _api: Any = field(default=None, repr=False)

    # -- tools ----------------------------------------------------------------------------
    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args]
        return _run(cmd, check=check, stdin=stdin, timeout=timeout, env=None)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            # Helm's caches and repositories stay in the run's own directory.
            "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
            "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
        }
        return _run([str(self.helm_bin), *args], check=check, stdin=None, timeout=timeout, env=env)

    # -- API clients ------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api

    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    def apps(self) -> Any:
        return client.AppsV1Api(self.api)

    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- helpers ------------------------------------------------------------------------------
    def restricted_namespace(self, prefix: str) -> str:
        """A fresh namespace enforcing the restricted Pod Security profile."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        meta = client.V1ObjectMeta(name=name, labels=RESTRICTED)
        self.core().create_namespace(client.V1Namespace(metadata=meta))
        return name

    def delete_namespace(self, name: str) -> None:
        self.core().delete_namespace(name, grace_period_seconds=0)

    def probe_results(self, pod: Any, probe_type: str = "Readiness") -> dict[str, float]:
        """The kubelet's own probe counters for ``pod`` ({result: count}), read from the node.

        ``prober_probe_total`` is what the kubelet counts as it runs the probes: proof that a
        pod's readiness came from its probe, not from anything the tests assumed.
        """
        text = self.core().connect_get_node_proxy_with_path(pod.spec.node_name, "metrics/probes")
        return probe_counts(
            text, namespace=pod.metadata.namespace, pod=pod.metadata.name, probe_type=probe_type
        )


def probe_counts(text: str, *, namespace: str, pod: str, probe_type: str) -> dict[str, float]:
    """{result: count} of ``prober_probe_total`` for one pod and probe type (pure)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "prober_probe_total"
                and labels.get("namespace") == namespace
                and labels.get("pod") == pod
                and labels.get("probe_type") == probe_type
            ):
                result = labels.get("result", "")
                counts[result] = counts.get(result, 0.0) + sample.value
    return counts


def pod_ready(pod: Any) -> bool:
    conditions = pod.status.conditions or [] if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _run(
    cmd: list[str],
    *,
    check: bool,
    stdin: str | None,
    timeout: float,
    env: dict[str, str] | None,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done
