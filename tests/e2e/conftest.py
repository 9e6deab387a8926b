"""Fixtures of the end-to-end tier (marker ``e2e``): real pods on a real node.

By default the session starts its own cluster with one real node (``tests/harness/k8s_node.py``;
root, containerd, runc, CNI plugins, Docker), builds the image once (``scripts/build-image.sh``,
Docker's layer cache makes a re-run quick) and imports it into the node (``docker save`` tarball
cached by image id). With ``SHOAL_E2E_KUBECONFIG`` it uses that cluster instead (kind:
``tests/e2e/kind.sh``), which must already hold the image; ``SHOAL_E2E_HOST_ADDRESS`` is then the
address at which its pods reach this machine. Figures go to the end of pytest's report.
The cluster is package-scoped: it stops after the last e2e test, not at the end of a long run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.cluster_env import REPO, E2EEnv
from tests.harness.k8s_binaries import BinariesMissing, ensure_binaries, kubectl_path
from tests.harness.k8s_node import RealNodeCluster, node_prerequisites
from tests.harness.redis_server import RedisServer

DEFAULT_IMAGE = "shoal:e2e"
REPORT: list[str] = []  # printed after the run, whatever the capture mode


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so this directory runs under --strict-markers on its own.
    config.addinivalue_line("markers", "e2e: end-to-end on a real node with real pods")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("shoal end-to-end")
        for line in REPORT:
            terminalreporter.write_line(line)


def report(line: str) -> None:
    REPORT.append(line)
    print(line)


def _unavailable(reason: str) -> None:
    # On a developer machine without root or Docker the tier is skipped; in CI it must run.
    if os.environ.get("CI"):
        pytest.fail(f"e2e tier cannot run: {reason}", pytrace=False)
    pytest.skip(f"e2e tier cannot run here: {reason}")


def build_image(tag: str) -> float:
    begin = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh"), tag],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-40:])
        pytest.fail(f"scripts/build-image.sh {tag} failed:\n{tail}", pytrace=False)
    return time.monotonic() - begin


@pytest.fixture(scope="package")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EEnv]:
    workdir = tmp_path_factory.mktemp("e2e")
    image = os.environ.get("SHOAL_E2E_IMAGE", DEFAULT_IMAGE)
    external = os.environ.get("SHOAL_E2E_KUBECONFIG")
    if external:
        host = os.environ.get("SHOAL_E2E_HOST_ADDRESS", "")
        helm = os.environ.get("SHOAL_E2E_HELM") or shutil.which("helm")
        if not host or helm is None:
            need = "SHOAL_E2E_HOST_ADDRESS (where pods reach this machine) and helm (PATH)"
            pytest.fail(f"SHOAL_E2E_KUBECONFIG needs {need}", pytrace=False)
        env = E2EEnv(Path(external), host, image, Path(helm), kubectl_path(), workdir)
        report(f"cluster: {external} (external); image {image}; host address {host}")
        yield env
        env.close()
        return

    missing = node_prerequisites()
    if missing:
        _unavailable("; ".join(missing))
    try:
        bins = ensure_binaries(
            ("kubelet", "kube-proxy", "helm"), build_args=("--with-node", "--with-helm")
        )
    except BinariesMissing as exc:
        _unavailable(str(exc))
    if os.environ.get("SHOAL_E2E_SKIP_BUILD") != "1":
        report(f"image: {image} built in {build_image(image):.1f} s (scripts/build-image.sh)")
    begin = time.monotonic()
    with RealNodeCluster() as rn:
        assert rn.node is not None
        report(f"cluster: control plane + real node Ready in {time.monotonic() - begin:.1f} s "
               f"(node {rn.node.startup_seconds:.1f} s), bridge {rn.network.bridge} "
               f"{rn.network.subnet}")  # fmt: skip
        report(f"image: {image} imported into the node in {rn.node.import_image(image):.1f} s")
        env = E2EEnv(
            rn.cluster.kubeconfig, rn.network.gateway, image, bins["helm"], kubectl_path(),
            workdir, local=rn,
        )  # fmt: skip
        yield env
        env.close()
        stop_begin = time.monotonic()
    report(f"cluster: stopped and host state restored in {time.monotonic() - stop_begin:.1f} s")


@pytest.fixture(scope="package")
def e2e_redis(e2e_env: E2EEnv) -> Iterator[RedisServer]:
    """A real Redis on loopback (for the tests) and on the address pods reach (for workers)."""
    with RedisServer(bind=("127.0.0.1", e2e_env.host_address)) as server:
        yield server


@pytest.fixture
def redis_urls(e2e_env: E2EEnv, e2e_redis: RedisServer) -> tuple[str, str]:
    """(URL for the test, URL for pods) of the session Redis, flushed for this test."""
    with redis.Redis.from_url(e2e_redis.url) as r:
        r.flushall()
    return e2e_redis.url, e2e_redis.url_at(e2e_env.host_address)


@pytest.fixture
def restricted_namespace(e2e_env: E2EEnv) -> Iterator[Callable[[str], str]]:
    """Factory of fresh namespaces enforcing the restricted Pod Security profile."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(e2e_env.restricted_namespace(prefix))
        return made[-1]

    yield make
    for name in made:
        e2e_env.delete_namespace(name)
