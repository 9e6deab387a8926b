"""A real Kubernetes control plane for tests: etcd, apiserver, controller-manager, scheduler, kwok.

Everything listens on loopback only. Nodes are kwok fakes: pods scheduled to them turn
Running without running anything, which is what operator logic tests need. Binaries come
from the per-user cache that ``scripts/k8s-binaries.sh`` fills (built from Go modules).

    with KubeCluster(nodes=1) as cluster:
        client = cluster.api_client()

With ``address=`` a node bridge address (the end-to-end tier, ``tests/harness/k8s_node.py``),
the API server binds and advertises there instead, with the default endpoint reconciler, so the
in-cluster ``kubernetes`` Service gets an endpoint that pods reach through kube-proxy.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import pki
from .k8s_binaries import BinariesMissing, ensure_binaries, k8s_version, kubectl_path
from .ports import free_port
from .waiting import wait_until

__all__ = ["BinariesMissing", "KubeCluster", "ensure_binaries", "k8s_version", "kubectl_path"]

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# Virtual: with kwok nodes nothing routes to it; on a real node only kube-proxy's rules do.
SERVICE_CIDR = "10.96.0.0/16"
LOOPBACK = "127.0.0.1"
# Fake pod IPs from RFC 2544's benchmarking range: never routed or served; tests must not dial them.
POD_CIDR = "198.18.0.1/16"


def _child_setup() -> None:
    # Own process group, so stop() also reaches anything a component forks.
    os.setsid()
    # If the test process dies without stop(), the kernel kills the component too (Linux only).
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class StartedWhileInside:
    """``with thing:`` starts it (``start()`` returns it) and stops it on the way out."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


class KubeCluster(StartedWhileInside):
    """A throw-away control plane plus ``nodes`` kwok nodes; ``start()`` takes ~3-5 s."""

    def __init__(
        self,
        nodes: int = 1,
        directory: str | Path | None = None,
        timeout: float = 60.0,
        *,
        address: str = LOOPBACK,
    ) -> None:
        self.node_count = nodes
        # Where the API server binds and what it advertises: loopback, or a real node's bridge.
        self.address = address
        self.timeout = timeout
        self._own_dir = directory is None
        self._requested_dir = Path(directory) if directory is not None else None
        self.directory = Path()
        self.admin_token = ""
        self.server = ""
        self.kubeconfig = Path()
        self.ca_file = Path()
        self.node_names: list[str] = []
        self.startup_seconds = 0.0
        self._procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self._logs: list[IO[bytes]] = []
        self._ssl = ssl.create_default_context()
        self._client: Any = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> KubeCluster:
        begin = time.monotonic()
        bins = ensure_binaries()
        if self._requested_dir is None:
            self.directory = Path(tempfile.mkdtemp(prefix="shoal-k8s-"))
        else:
            self.directory = self._requested_dir
            self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._start(bins)
        except BaseException:
            self.stop(keep_dir=True)  # keep the logs the error message points at
            raise
        atexit.register(self.stop)  # a forgotten stop() must not leak processes or files
        self.startup_seconds = time.monotonic() - begin
        return self

    def _start(self, bins: dict[str, Path]) -> None:
        d = self.directory
        (d / "logs").mkdir(exist_ok=True)
        pki_dir = d / "pki"
        pki_dir.mkdir(exist_ok=True)
        ca = pki.make_ca(pki_dir, "ca")
        serving = pki.make_cert(
            pki_dir, "apiserver", ca, "kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ip_addresses=tuple(dict.fromkeys((LOOPBACK, self.address, "10.96.0.1"))),
            server=True,
        )  # fmt: skip
        sa = pki.make_key_pair(pki_dir, "sa")
        # The aggregation layer (metrics adapters, later tiers) needs a front-proxy client identity.
        fp_ca = pki.make_ca(pki_dir, "front-proxy-ca")
        fp = pki.make_cert(pki_dir, "front-proxy-client", fp_ca, "front-proxy-client", client=True)
        self.ca_file = ca.cert
        kubelet_flags: tuple[str | Path, ...] = ()
        if self.address != LOOPBACK:
            # A real kubelet authenticates the API server (logs, exec) by this client cert.
            kc = pki.make_cert(
                pki_dir, "apiserver-kubelet-client", ca, "kube-apiserver-kubelet-client",
                organizations=("system:masters",), client=True,
            )  # fmt: skip
            kubelet_flags = ("--kubelet-client-certificate", kc.cert)
            kubelet_flags += ("--kubelet-client-key", kc.key)
        self._ssl = ssl.create_default_context(cafile=str(ca.cert))

        self.admin_token = secrets.token_urlsafe(32)
        tokens = d / "tokens.csv"
        tokens.write_text(f'{self.admin_token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)

        # Audit log of ServiceAccounts' requests (metadata only): tests compare the verbs an
        # operator used with what its RBAC grants (tests/integration/shoal_operator/test_rbac.py).
        audit_policy = d / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_POLICY)
        self.audit_log = d / "logs" / "audit.log"

        etcd_port, peer_port, api_port, kwok_port = (free_port() for _ in range(4))
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd", bins["etcd"], "--data-dir", d / "etcd",
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"default={peer_url}",
            "--unsafe-no-fsync",  # test data is disposable; fsync dominates etcd latency
        )  # fmt: skip
        # The API server retries etcd itself, so it starts right away instead of after a probe.
        self._spawn(
            "kube-apiserver", bins["kube-apiserver"], "--etcd-servers", etcd_url,
            "--bind-address", self.address, "--advertise-address", self.address,
            "--secure-port", api_port, "--client-ca-file", ca.cert,
            "--tls-cert-file", serving.cert, "--tls-private-key-file", serving.key,
            "--token-auth-file", tokens, "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction,PodSecurity", "--allow-privileged=true",
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", sa.cert, "--service-account-signing-key-file", sa.key,
            # The default (lease) reconciler refuses a loopback advertise address; off loopback
            # it gives the kubernetes Service its endpoint (in-cluster clients on a real node).
            *(("--endpoint-reconciler-type", "none") if self.address == LOOPBACK else ()),
            # Otherwise node proxying (kubectl logs) resolves node names through the machine's DNS.
            "--kubelet-preferred-address-types", "InternalIP", *kubelet_flags,
            "--requestheader-client-ca-file", fp_ca.cert,
            "--requestheader-allowed-names", "front-proxy-client",
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", fp.cert, "--proxy-client-key-file", fp.key,
            "--audit-policy-file", audit_policy, "--audit-log-path", self.audit_log,
            "--audit-log-format", "json",
        )  # fmt: skip
        self.server = f"https://{self.address}:{api_port}"
        self.kubeconfig = self.write_kubeconfig(d / "kubeconfig", "admin", self.admin_token)
        wait_until(
            lambda: self._alive() and self._get("/readyz") == b"ok",
            self.timeout, 0.1, description="kube-apiserver /readyz", ignore=(OSError,),
        )  # fmt: skip

        kcfg = self.kubeconfig
        self._spawn(
            "kube-controller-manager", bins["kube-controller-manager"], "--kubeconfig", kcfg,
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
            # node-ipam needs a pod CIDR per node, which kwok nodes neither have nor need.
            "--controllers", "*,-node-ipam-controller",
            "--root-ca-file", ca.cert,  # pods get kube-root-ca.crt; SA token volumes mount
            "--service-account-private-key-file", sa.key,
            "--cluster-signing-cert-file", ca.cert, "--cluster-signing-key-file", ca.key,
        )  # fmt: skip
        self._spawn(
            "kube-scheduler", bins["kube-scheduler"], "--kubeconfig", kcfg,
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
        )  # fmt: skip
        self._spawn(
            "kwok", bins["kwok"], "--kubeconfig", kcfg, "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector", f"{KWOK_ANNOTATION}=fake",
            "--server-address", f"127.0.0.1:{kwok_port}",
            # Node and pod addresses: keep the node on loopback, pods in a never-dialled range.
            "--node-ip", "127.0.0.1", "--node-port", kwok_port, "--cidr", POD_CIDR,
        )  # fmt: skip
        self.add_nodes(self.node_count)
        core = self.core_v1()
        wait_until(
            lambda: self._alive() and core.read_namespaced_service_account("default", "default"),
            self.timeout, 0.1, description="ServiceAccount default/default", ignore=(ApiException,),
        )  # fmt: skip
        wait_until(
            lambda: self._alive() and all(self.node_is_ready(n) for n in self.node_names),
            self.timeout, 0.1, description=f"kwok nodes {self.node_names} Ready and untainted",
        )  # fmt: skip

    def stop(self, keep_dir: bool = False) -> None:
        """Stop every component (process groups, newest first) and remove a directory we made."""
        atexit.unregister(self.stop)
        # Newest first, one at a time: the API server shuts down slowly once etcd is gone.
        for _, proc, _ in reversed(self._procs):
            stop_process_group(proc, grace_seconds=5)
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._own_dir and not keep_dir and self.directory != Path():
            shutil.rmtree(self.directory, ignore_errors=True)

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """One component (e.g. ``kube-apiserver``) frozen (SIGSTOP of its process group) for
        the block: its port still accepts connections, nothing answers; resumed on exit."""
        procs = [proc for n, proc, _ in self._procs if n == name]
        if not procs:
            raise ValueError(f"no component {name!r} (have {[n for n, _, _ in self._procs]})")
        for proc in procs:
            _signal_group(proc, signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in procs:
                _signal_group(proc, signal.SIGCONT)

    # -- clients and credentials ----------------------------------------------------------
    def write_kubeconfig(self, path: Path, user: str, token: str) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "shoal-test",
                    "cluster": {
                        "server": self.server,
                        # Inline, so the file stays valid wherever it is copied (e.g. a Secret).
                        "certificate-authority-data": base64.b64encode(
                            self.ca_file.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "shoal-test", "user": user}}],
            "current-context": user,
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # it holds a bearer token
        return path

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for ``kubeconfig`` (default: admin)."""
        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))

    def core_v1(self) -> Any:
        if self._client is None:
            self._client = self.api_client()
        return client.CoreV1Api(self._client)

    def make_service_account_kubeconfig(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path:
        """Create ServiceAccount ``namespace/name`` if needed, and a kubeconfig with a token for it.

        The token comes from the TokenRequest API, so it carries exactly the RBAC the test grants.
        """
        core = self.core_v1()
        meta = client.V1ObjectMeta
        _create_if_absent(
            lambda: core.create_namespace(client.V1Namespace(metadata=meta(name=namespace)))
        )
        sa = client.V1ServiceAccount(metadata=meta(name=name))
        _create_if_absent(lambda: core.create_namespaced_service_account(namespace, sa))
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        token = core.create_namespaced_service_account_token(name, namespace, request).status.token
        path = self.directory / f"kubeconfig-{namespace}-{name}"
        return self.write_kubeconfig(path, f"system:serviceaccount:{namespace}:{name}", token)

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(kubectl_path()), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)

    # -- nodes ------------------------------------------------------------------------------
    def add_nodes(self, count: int) -> list[str]:
        """Create ``count`` more kwok nodes (``kwok-node-<i>``); kwok makes them Ready."""
        names = [
            f"kwok-node-{i}" for i in range(len(self.node_names), len(self.node_names) + count)
        ]
        resources = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
        for name in names:
            node = client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=name,
                    annotations={KWOK_ANNOTATION: "fake"},
                    labels={
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                    },
                ),
                status=client.V1NodeStatus(allocatable=resources, capacity=resources),
            )
            self.core_v1().create_node(node)
        self.node_names += names
        return names

    def node_is_ready(self, name: str) -> bool:
        # Admission taints every new node not-ready; node-lifecycle-controller lifts it once
        # kwok reports Ready, and only then will the scheduler place pods there.
        node = self.core_v1().read_node(name)
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        return ready and not any(
            t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or []
        )

    # -- internals --------------------------------------------------------------------------
    def _spawn(self, name: str, binary: Path, *args: str | int | Path) -> None:
        log_path = self.directory / "logs" / f"{name}.log"
        log = log_path.open("ab")
        self._logs.append(log)
        # PDEATHSIG follows the spawning *thread*; only tie lifetimes to the main thread.
        setup = _child_setup if threading.current_thread() is threading.main_thread() else os.setsid
        proc = subprocess.Popen(
            [str(binary), *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            preexec_fn=setup,
        )
        self._procs.append((name, proc, log_path))

    def _alive(self) -> bool:
        for name, proc, log_path in self._procs:
            if proc.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"{name} exited with {proc.returncode}; log {log_path}:\n{tail}")
        return True

    def _get(self, path: str) -> bytes:
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        with urllib.request.urlopen(req, timeout=2, context=self._ssl) as resp:
            return bytes(resp.read())


def _create_if_absent(create: Callable[[], object]) -> None:
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:  # already exists is fine; anything else is a real failure
            raise


def stop_process_group(proc: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM the process's group, then SIGKILL it if the process outlives ``grace_seconds``."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, sig)
