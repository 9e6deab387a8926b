"""What a real-cluster scaling run needs besides the cluster: Shoal's operator (the Helm chart)
and KEDA (``scripts/keda.sh``: its operator and metrics adapter on the host)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.cluster_env import CHART, REPO, E2EEnv, pod_ready, split_image
from tests.harness.waiting import wait_until

KEDA_SCRIPT = REPO / "scripts" / "keda.sh"
RELEASE = "shoal"


def install_operator(env: E2EEnv, namespace: str) -> None:
    """``helm install`` the chart (the operator pod, default settings) and wait for it Ready."""
    env.kubectl("create", "namespace", namespace)
    repo, tag = split_image(env.image)
    env.helm("install", RELEASE, str(CHART), "-n", namespace, "--set", f"image.repository={repo}",
             "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never")  # fmt: skip
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"

    def ready() -> bool:
        pods = env.core().list_namespaced_pod(namespace, label_selector=selector).items
        return any(pod_ready(p) for p in pods)

    wait_until(ready, 120, 0.5, description="the Shoal operator pod Ready")


def keda_build() -> Path:
    """Build (or reuse) KEDA's binaries; returns their directory."""
    subprocess.run(["bash", str(KEDA_SCRIPT), "build"], check=True, timeout=3600)
    done = subprocess.run(["bash", str(KEDA_SCRIPT), "--print-dir"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return Path(done.stdout.strip())


@contextlib.contextmanager
def keda_running(env: E2EEnv, state_dir: Path) -> Iterator[None]:
    """KEDA's operator and metrics adapter against ``env``'s cluster for the block."""
    state_dir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "KUBECONFIG": str(env.kubeconfig),
                 "NODE_IP": env.host_address, "KUBECTL": str(env.kubectl_bin)}  # fmt: skip
    cmd = ["bash", str(KEDA_SCRIPT)]
    try:
        subprocess.run([*cmd, "up", str(state_dir)], env=child_env, check=True, timeout=600)
        yield
    finally:
        subprocess.run([*cmd, "down", str(state_dir)], env=child_env, check=False, timeout=60)
