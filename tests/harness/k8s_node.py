"""One real Kubernetes node on this machine, for the end-to-end tier: pods really run.

containerd, runc and the CNI plugins come from Debian's packages; kubelet and kube-proxy are the
pinned binaries of ``scripts/k8s-binaries.sh --with-node``. The node lives on a bridge with its
own /24 made here: the API server binds on the bridge's gateway address (``KubeCluster(address=)``)
so pods reach it through kube-proxy's rules for the ``kubernetes`` Service, and test servers on
the host (Redis) bound there are reachable from pods too. No registry is involved: images arrive
by ``docker save`` -> ``ctr images import`` (the pause image is a static C program), so pods use
``imagePullPolicy: Never``.

    with RealNodeCluster() as rn:          # root only; one at a time per machine (a lock)
        rn.node.import_image("shoal:dev")
        rn.cluster.kubectl("get", "nodes")

``stop()`` undoes everything it did to the host: processes (by pid), mounts, network namespaces,
the bridge, the iptables rules and chains that kubelet and kube-proxy added, the sysctls kubelet
sets, cgroups and the files kubelet and CNI leave in /var (see ``k8s_node_host.py``). The host
snapshot is also saved to ``STATE_FILE``: if a run dies (SIGKILL), the next one cleans up after it.
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import yaml

from . import k8s_node_host as node_host
from .k8s import KubeCluster, StartedWhileInside, _child_setup, stop_process_group
from .k8s_binaries import ensure_binaries
from .k8s_node_images import ensure_pause_image, saved_image
from .ports import free_port
from .waiting import wait_until

NODE_NAME = "real-node-0"
CNI_NETWORK = "shoal-e2e"  # also names libcni's cache files, which stop() removes
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
LOCK_FILE = Path("/run/lock/shoal-real-node.lock")
STATE_FILE = LOCK_FILE.with_suffix(".state.json")  # host snapshot while a node runs
HOST_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables", "docker")


class NodeUnavailable(RuntimeError):
    """This machine cannot run a real node (not root, or a tool is missing); says which."""


def node_prerequisites() -> list[str]:
    """What is missing for a real node here; empty when it can run."""
    missing = [] if os.geteuid() == 0 else ["root (kubelet, containerd, bridges, iptables)"]
    missing += [f"{tool} (PATH)" for tool in HOST_TOOLS if shutil.which(tool) is None]
    if not (Path(CNI_BIN_DIR) / "bridge").exists():
        missing.append(
            f"CNI plugins in {CNI_BIN_DIR} (apt-get install containernetworking-plugins)"
        )
    if shutil.which("gcc") is None:
        missing.append("gcc (builds the pause image)")
    return missing


# -- pure: configuration files ---------------------------------------------------------------
def containerd_config(*, directory: Path, socket: Path, pause_image: str) -> str:
    """containerd 1.6 config: everything under ``directory``, CRI on our CNI network."""
    return f"""version = 2
root = "{directory}/root"
state = "{directory}/state"
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{directory}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # The sandbox lacks CAP_SYS_RESOURCE: without this every pod sandbox fails
  # ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  # Network namespaces under our state dir, so stop() finds and unmounts exactly ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{directory}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "{directory}/runc"
"""


def cni_conflist(*, bridge: str, subnet: ipaddress.IPv4Network, ipam_dir: Path) -> dict[str, Any]:
    gateway = str(subnet.network_address + 1)
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "isDefaultGateway": True,
                "ipMasq": False,  # nothing leaves the bridge (see node_host.FORWARD_GUARD)
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": str(subnet), "gateway": gateway}]],
                },
            }
        ],
    }


def kubelet_config(*, socket: Path, address: str, port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this kernel mounts cgroup v1 only
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "failSwapOn": False,
        # The API server proves itself with its kubelet client certificate (KubeCluster).
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": "CA_FILE"},
        },
        "authorization": {"mode": "Webhook"},
        "resolvConf": "",  # no cluster DNS: pods reach servers by IP
        # A test node must not evict or garbage-collect because the machine's disk is busy.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def kube_proxy_config(
    *, kubeconfig: Path, subnet: ipaddress.IPv4Network, healthz_port: int, metrics_port: int
) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": str(subnet),
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "nodePortAddresses": [str(subnet)],
        # Leave host-wide settings alone: no route_localnet, no conntrack table resizing.
        "iptables": {"localhostNodePorts": False},
        "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


# -- the node ---------------------------------------------------------------------------------
class RealNode:
    """containerd, kubelet and kube-proxy, joined to ``cluster`` (API server on the bridge)."""

    def __init__(
        self,
        cluster: KubeCluster,
        network: node_host.NodeNetwork,
        *,
        pause_image: str,
        timeout: float = 90.0,
    ) -> None:
        self.cluster = cluster
        self.network = network
        self.pause_image = pause_image
        self.timeout = timeout
        self.directory = cluster.directory / "node"
        self.socket = self.directory / "containerd.sock"
        self._procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self._logs: list[IO[bytes]] = []
        self.startup_seconds = 0.0

    def start(self) -> RealNode:
        begin = time.monotonic()
        bins = ensure_binaries(("kubelet", "kube-proxy"), build_args=("--with-node",))
        d = self.directory
        for sub in ("cni", "logs", "kubelet", "kubelet-pki"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "containerd.toml").write_text(
            containerd_config(directory=d, socket=self.socket, pause_image=self.pause_image)
        )
        conflist = cni_conflist(
            bridge=self.network.bridge, subnet=self.network.subnet, ipam_dir=d / "cni-ipam"
        )
        (d / "cni" / "10-shoal-e2e.conflist").write_text(json.dumps(conflist, indent=2))
        self._spawn("containerd", Path(shutil.which("containerd") or "containerd"),
                    "--config", d / "containerd.toml")  # fmt: skip
        wait_until(
            lambda: self._alive() and self.ctr("version", check=False) is not None,
            self.timeout, 0.1, description="containerd to answer on its socket",
        )  # fmt: skip
        self.import_image(self.pause_image)

        kubelet = kubelet_config(
            socket=self.socket, address=self.network.gateway, port=free_port(),
            healthz_port=free_port(),
        )  # fmt: skip
        kubelet["authentication"]["x509"]["clientCAFile"] = str(self.cluster.ca_file)
        (d / "kubelet.yaml").write_text(yaml.safe_dump(kubelet))
        self._spawn(
            "kubelet", bins["kubelet"], "--config", d / "kubelet.yaml",
            "--kubeconfig", self.cluster.kubeconfig, "--hostname-override", NODE_NAME,
            "--node-ip", self.network.gateway, "--root-dir", d / "kubelet",
            "--cert-dir", d / "kubelet-pki",
        )  # fmt: skip
        proxy = kube_proxy_config(
            kubeconfig=self.cluster.kubeconfig, subnet=self.network.subnet,
            healthz_port=free_port(), metrics_port=free_port(),
        )  # fmt: skip
        (d / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy))
        self._spawn("kube-proxy", bins["kube-proxy"], "--config", d / "kube-proxy.yaml")
        wait_until(
            lambda: self._alive() and self.cluster.node_is_ready(NODE_NAME),
            self.timeout, 0.2, description=f"node {NODE_NAME} Ready and untainted",
            ignore=(Exception,),
        )  # fmt: skip
        self.startup_seconds = time.monotonic() - begin
        return self

    def ctr(self, *args: str | Path, check: bool = True, timeout: float = 300) -> str | None:
        """Run ``ctr`` against this node's containerd (namespace k8s.io, where CRI lives)."""
        cmd = ["ctr", "-a", str(self.socket), "-n", "k8s.io", *map(str, args)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            if check:
                raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()[-2000:]}")
            return None
        return done.stdout

    def import_image(self, ref: str) -> float:
        """Make Docker image ``ref`` available to pods; returns the seconds it took."""
        begin = time.monotonic()
        self.ctr("images", "import", saved_image(ref))
        return time.monotonic() - begin

    def stop(self) -> None:
        """Stop pods' containers, kubelet, kube-proxy, containerd and its shims; unmount."""
        atexit.unregister(self.stop)
        if not self._procs:
            return
        by_name = {name: proc for name, proc, _ in self._procs}
        # kubelet first, or it restarts the containers we are about to kill.
        for name in ("kubelet", "kube-proxy"):
            if name in by_name:
                _stop_process(by_name[name])
        if self.socket.exists():
            for task in (self.ctr("tasks", "ls", "-q", check=False, timeout=20) or "").split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False, timeout=20)
        if "containerd" in by_name:
            _stop_process(by_name["containerd"])
        # Shims outlive containerd by design; end the ones serving this containerd, by pid.
        node_host.kill_processes_with_arg(f"-address {self.socket}")
        node_host.unmount_under(self.directory)
        self._procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.directory / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _spawn(self, name: str, binary: Path, *args: str | int | Path) -> None:
        log_path = self.directory / "logs" / f"{name}.log"
        log = log_path.open("ab")
        self._logs.append(log)
        proc = subprocess.Popen(
            [str(binary), *map(str, args)], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, cwd=self.directory, preexec_fn=_child_setup,
        )  # fmt: skip
        self._procs.append((name, proc, log_path))
        atexit.register(self.stop)

    def _alive(self) -> bool:
        for name, proc, log_path in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; log {log_path}:\n{self.log_tail(name)}"
                )
        return True


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    stop_process_group(proc, grace_seconds=10)


class RealNodeCluster(StartedWhileInside):
    """A KubeCluster on a fresh node bridge plus one RealNode; one per machine at a time."""

    def __init__(
        self,
        *,
        network: node_host.NodeNetwork | None = None,
        directory: Path | None = None,
        lock_timeout: float = 600.0,
    ) -> None:
        self.network = network or node_host.NodeNetwork.from_env()
        self._requested_dir = directory
        self._directory: Path | None = None
        self.cluster = KubeCluster(nodes=0, directory=directory, address=self.network.gateway)
        self.node: RealNode | None = None
        self.lock_timeout = lock_timeout
        self._lock: IO[str] | None = None
        self._snapshot: node_host.HostSnapshot | None = None

    def start(self) -> RealNodeCluster:
        missing = node_prerequisites()
        if missing:
            raise NodeUnavailable("a real node needs: " + "; ".join(missing))
        self._acquire_lock()
        try:
            self.network.delete()  # before the snapshot: a dead run's bridge is no baseline
            if node_host.HostSnapshot.recover_stale(STATE_FILE):
                print(f"real node: cleaned up after a run that died ({STATE_FILE})")
            self._snapshot = node_host.HostSnapshot.take()
            # The directory is known before anything starts, so a dead run's can be found.
            self._directory = self._requested_dir or Path(tempfile.mkdtemp(prefix="shoal-k8s-"))
            self.cluster = KubeCluster(
                nodes=0, directory=self._directory, address=self.network.gateway
            )
            self._snapshot.node_dir = str(self._directory / "node")
            own = self._requested_dir is None
            self._snapshot.remove_dir = str(self._directory if own else self._directory / "node")
            self._snapshot.bridge = self.network.bridge
            self._snapshot.save(STATE_FILE)
            self.network.create()
            pause = ensure_pause_image()
            self.cluster.start()
            self.node = RealNode(self.cluster, self.network, pause_image=pause).start()
        except BaseException:
            self.stop(keep_dir=True)
            raise
        return self

    def stop(self, keep_dir: bool = False) -> None:
        if self.node is not None:
            self.node.stop()
        self.cluster.stop(keep_dir=keep_dir)
        if self._requested_dir is None and self._directory is not None and not keep_dir:
            shutil.rmtree(self._directory, ignore_errors=True)
        self.network.delete()
        if self._snapshot is not None:
            self._snapshot.restore()
            self._snapshot = None
            STATE_FILE.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def _acquire_lock(self) -> None:
        # kube-proxy's chains and kubelet's cgroups are host-wide: two nodes would fight.
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        lock = LOCK_FILE.open("w")

        def try_lock() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            what = f"{LOCK_FILE} (another real-node cluster runs here)"
            wait_until(try_lock, self.lock_timeout, 0.5, description=what)
        except BaseException:
            lock.close()
            raise
        self._lock = lock
