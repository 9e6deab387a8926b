"""Fixtures for the operator against the real test cluster: the CRD, the chart's RBAC, and
`shoal operator` as a subprocess with a least-privilege ServiceAccount token (never admin).

Each test gets its own namespace (labelled for the restricted Pod Security profile, so every
worker pod the operator renders must pass it) and its own operator watching only that namespace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness.k8s import KubeCluster, k8s_version
from tests.harness.k8s_binaries import cache_bin_dir
from tests.harness.ports import free_port
from tests.harness.waiting import wait_until

# The session cluster and the namespace factory of the k8s tier.

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "workerpools.shoal.dev.yaml"
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workerpools"
RELEASE = "shoal"  # the chart's ServiceAccount is named after the release
IMAGE = "registry.invalid/shoal/worker:1"  # kwok never pulls


def helm_path() -> Path:
    return cache_bin_dir() / "helm"


@pytest.fixture(scope="session")
def crd(kube_cluster: KubeCluster) -> None:
    """The WorkerPool CRD from crds/, applied once and established."""
    kube_cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    kube_cluster.kubectl(
        "wait", "--for", "condition=Established", "crd/workerpools.shoal.dev", "--timeout=30s"
    )
    # Established is not yet servable: a new CRD's storage answers 429 for a moment.
    api = client.CustomObjectsApi(kube_cluster.api_client())
    wait_until(lambda: api.list_cluster_custom_object(GROUP, VERSION, PLURAL) is not None, 30,
               0.05, description="WorkerPools listable", ignore=(ApiException,))  # fmt: skip
    start_gc_probe(api.api_client)


GC_PROBE_NS = "gc-probe"


def start_gc_probe(api: Any) -> None:
    """A throw-away pool owning a ConfigMap, deleted at once: see ``gc_watches_workerpools``."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=GC_PROBE_NS)))
    except ApiException as exc:
        # The `crd` fixture is also imported by the dashboard's tests: pytest runs it once per
        # place it is defined, on the one session cluster. The probe started the first time.
        if exc.status == 409:
            return
        raise
    pool = custom.create_namespaced_custom_object(GROUP, VERSION, GC_PROBE_NS, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool", "metadata": {"name": "probe"},
        "spec": {"image": IMAGE, "queues": ["probe"]},
    })  # fmt: skip
    owner = client.V1OwnerReference(api_version=f"{GROUP}/{VERSION}", kind="WorkerPool",
                                    name="probe", uid=pool["metadata"]["uid"])  # fmt: skip
    core.create_namespaced_config_map(GC_PROBE_NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="child", owner_references=[owner])))  # fmt: skip
    custom.delete_namespaced_custom_object(GROUP, VERSION, GC_PROBE_NS, PLURAL, "probe")


@pytest.fixture(scope="session")
def gc_watches_workerpools(kube_cluster: KubeCluster, crd: None) -> None:
    """Wait until the garbage collector collects children of WorkerPools.

    The controller-manager's garbage collector picks up a new CRD at its next discovery pass
    (every 30 s), so right after the CRD is created, deleting a pool collects nothing yet. The
    probe started with the CRD (a deleted pool's ConfigMap) shows when it does; the tests that
    run meanwhile hide most of the wait.
    """
    core = client.CoreV1Api(kube_cluster.api_client())

    def collected() -> bool:
        try:
            core.read_namespaced_config_map("child", GC_PROBE_NS)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(collected, 90, 0.2, description="the garbage collector to collect a pool's child")


def chart_rbac(ns: str) -> list[dict[str, Any]]:
    """The chart's own RBAC for an operator watching ``ns`` (scope: namespace)."""
    out = subprocess.run(
        [str(helm_path()), "template", RELEASE, str(REPO / "charts" / "shoal"),
         "--namespace", ns, "--set", "rbac.scope=namespace",
         # helm built from Go modules assumes Kubernetes 1.20 unless told the cluster's version
         "--kube-version", k8s_version(),
         "--show-only", "templates/rbac.yaml"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


class Operator:
    """`shoal operator` in a subprocess; ``stop`` sends SIGTERM and returns the exit code."""

    def __init__(self, *, kubeconfig: Path, ns: str, redis_url: str | None, log: Path,
                 tick_seconds: float = 0.25, name: str | None = None,
                 args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.kubeconfig, self.ns, self.redis_url, self.log = kubeconfig, ns, redis_url, log
        self.tick_seconds = tick_seconds
        self.name = name or log.stem  # POD_NAME: its Lease identity and Events' instance
        self.args = args
        self.env = dict(env or {})  # e.g. REDIS_PASSWORD, REDIS_CA_FILE of the default Redis
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, timeout: float = 30.0) -> Operator:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONPATH": path,
               "POD_NAME": self.name, **self.env}  # fmt: skip
        env.pop("KUBERNETES_SERVICE_HOST", None)
        args = [
            sys.executable, "-m", "shoal", "operator", "--namespace", self.ns,
            "--tick-seconds", str(self.tick_seconds),
            "--liveness-host", "127.0.0.1", "--liveness-port", str(self.liveness_port),
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
            "--log-level", "debug", *self.args,
        ]  # fmt: skip
        if self.redis_url:
            args += ["--redis-url", self.redis_url]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=out)
        wait_until(self.healthy, timeout, 0.05, description="operator /healthz",
                   ignore=(OSError,))  # fmt: skip
        self.started_at = time.monotonic()
        return self

    def _get(self, port: int, path: str) -> bytes:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return bytes(resp.read())

    def healthy(self) -> Any:
        return json.loads(self._get(self.liveness_port, "/healthz"))

    def metrics(self) -> str:
        return self._get(self.metrics_port, "/metrics").decode()

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample's value from /metrics (labels must match exactly), or None."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        prefix = f"{name}{{{want}}} " if labels else f"{name} "
        for line in self.metrics().splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return None

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Env:
    """One test's world: its namespace, admin API clients, and a way to run the operator."""

    def __init__(self, cluster: KubeCluster, api: Any, ns: str, tmp: Path) -> None:
        self.cluster, self.api, self.ns, self.tmp = cluster, api, ns, tmp
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.operators: list[Operator] = []
        self._kubeconfig: Path | None = None

    # -- the operator, as the chart's ServiceAccount -------------------------------------
    def operator_kubeconfig(self) -> Path:
        if self._kubeconfig is None:
            docs = chart_rbac(self.ns)
            path = self.tmp / "rbac.yaml"
            path.write_text(yaml.safe_dump_all(docs))
            self.cluster.kubectl("apply", "-f", str(path))
            kubeconfig = self.cluster.make_service_account_kubeconfig(self.ns, RELEASE)

            def granted() -> bool:
                # New Roles take effect once the API server's RBAC caches have them.
                for verb, what in (("watch", "workerpools.shoal.dev"), ("patch", "deployments"),
                                   ("list", "customresourcedefinitions")):  # fmt: skip
                    out = self.cluster.kubectl("auth", "can-i", verb, what, "-n", self.ns,
                                               kubeconfig=kubeconfig, check=False)  # fmt: skip
                    if out.stdout.strip() != "yes":
                        return False
                return True

            wait_until(granted, 10, 0.1, description="the chart's RBAC in effect")
            self._kubeconfig = kubeconfig
        return self._kubeconfig

    def start_operator(self, redis_url: str | None, **kw: Any) -> Operator:
        log = self.tmp / f"operator-{len(self.operators)}.log"
        op = Operator(kubeconfig=self.operator_kubeconfig(), ns=self.ns, redis_url=redis_url,
                      log=log, **kw)  # fmt: skip
        self.operators.append(op)
        return op.start()

    # -- pools ------------------------------------------------------------------------------
    def create_pool(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "WorkerPool",
            "metadata": {"name": name},
            "spec": {"image": IMAGE, "queues": [name], **spec},
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body
        )
        return created

    def pool(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return found

    def patch_pool(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec}
        )

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.pool(name).get("status") or {})

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for c in self.status(name).get("conditions") or []:
            if c["type"] == kind:
                return dict(c)
        return {}

    def deployment(self, name: str) -> Any:
        try:
            return self.apps.read_namespaced_deployment(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def replicas(self, name: str) -> int | None:
        d = self.deployment(name)
        return None if d is None else int(d.spec.replicas)

    def pods(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_pod(self.ns, label_selector=f"shoal.dev/pool={name}")
        return [p for p in items.items if p.metadata.deletion_timestamp is None]

    def events(self, reason: str) -> list[Any]:
        items = self.core.list_namespaced_event(self.ns).items
        return [e for e in items if e.reason == reason and e.involved_object.kind == "WorkerPool"]

    def close(self) -> None:
        for op in self.operators:
            op.kill()


@pytest.fixture
def env(
    kube_cluster: KubeCluster,
    kube_api: Any,
    namespace: Callable[..., str],
    crd: None,
    tmp_path: Path,
) -> Iterator[Env]:
    ns = namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    world = Env(kube_cluster, kube_api, ns, tmp_path)
    try:
        yield world
    finally:
        world.close()


@pytest.fixture
def wait() -> Callable[..., Any]:
    """wait_until with a description, for brevity in tests; a 404 (not there yet) is "not yet"."""

    def run(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        return wait_until(predicate, timeout, 0.05, description=what, ignore=(ApiException,))

    return run
