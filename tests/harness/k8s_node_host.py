"""What a real test node changes on the host, and how ``k8s_node`` undoes it.

The node bridge and its forward guard, iptables rules and chains (kubelet's and kube-proxy's
``KUBE-*``, CNI's ``CNI-*``), sysctls kubelet sets (``vm.overcommit_memory``, ``kernel.panic``...),
kubelet's cgroups (``kubepods``) and the files kubelet and CNI write outside the node's own
directory (``/var/log/pods``, ``/var/lib/cni``...). ``HostSnapshot.take()`` before the node
starts, ``restore()`` after it stopped: what appeared in between goes, what was there stays.
The decisions (what to undo) are pure functions; the rest is thin I/O.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHAIN_PREFIXES = ("KUBE-", "CNI-")
BUILTIN_CHAINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})
GUARD_COMMENT = "shoal-e2e: pod traffic stays on the test bridge"
# kubelet sets the first five at start (protectKernelDefaults is off); the others are what
# kube-proxy may touch (its config asks it not to).
SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
    "net/ipv4/conf/all/route_localnet", "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/bridge/bridge-nf-call-iptables", "net/ipv4/ip_forward",
)  # fmt: skip
# Where kubelet, containerd's CNI library and kube-proxy write outside the node directory.
WATCHED_DIRS = (
    "/var/log/pods", "/var/log/containers", "/var/lib/cni", "/run/netns",
    "/var/lib/kubelet", "/run/kubernetes", "/etc/kubernetes", "/opt/containerd",
)  # fmt: skip
CGROUP_ROOT = Path("/sys/fs/cgroup")
BRIDGE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")  # Linux interface names: 15 bytes


# -- the node bridge ------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeNetwork:
    """The node's bridge and its subnet; the gateway (.1) is the node and host-server address."""

    bridge: str = "shoale2e0"
    subnet: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("10.213.64.0/24")
    )

    def __post_init__(self) -> None:
        if not BRIDGE_NAME.match(self.bridge):
            raise ValueError(f"SHOAL_E2E_BRIDGE: {self.bridge!r} is not an interface name")
        if not self.subnet.is_private or self.subnet.prefixlen > 28:
            raise ValueError(f"SHOAL_E2E_SUBNET: {self.subnet} must be a private /28 or larger")

    @classmethod
    def from_env(cls) -> NodeNetwork:
        subnet = os.environ.get("SHOAL_E2E_SUBNET", "10.213.64.0/24")
        try:
            net = ipaddress.IPv4Network(subnet)
        except ValueError as exc:
            raise ValueError(f"SHOAL_E2E_SUBNET: {exc}") from None
        return cls(os.environ.get("SHOAL_E2E_BRIDGE", "shoale2e0"), net)

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def _guard(self, op: str) -> list[str]:
        # The host forwards (ip_forward=1) and pods' default route is the bridge: without this,
        # a pod could send packets off the machine. Nothing here needs that.
        return ["iptables", op, "FORWARD", "-i", self.bridge, "!", "-o", self.bridge,
                "-m", "comment", "--comment", GUARD_COMMENT, "-j", "DROP"]  # fmt: skip

    def create(self) -> None:
        self.delete()  # a crashed run may have left it
        clash = overlapping_routes(_run_text("ip", "-j", "route", "show"), self.subnet)
        if clash:
            raise RuntimeError(
                f"SHOAL_E2E_SUBNET: {self.subnet} overlaps routes already here: {clash}"
            )
        _run_text("ip", "link", "add", self.bridge, "type", "bridge")
        _run_text(
            "ip", "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge
        )
        _run_text("ip", "link", "set", self.bridge, "up")
        guard = self._guard("-I")
        _run_text(*guard[:3], "1", *guard[3:])

    def delete(self) -> None:
        for _ in range(10):  # one per earlier create() that was never undone
            if subprocess.run(self._guard("-D"), capture_output=True).returncode != 0:
                break
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def overlapping_routes(routes_json: str, subnet: ipaddress.IPv4Network) -> list[str]:
    """Destinations of existing routes that overlap ``subnet`` (the default route excepted)."""
    clash = []
    for route in json.loads(routes_json or "[]"):
        dst = route.get("dst", "default")
        if dst == "default":
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.overlaps(subnet):
            clash.append(f"{dst} dev {route.get('dev', '?')}")
    return clash


# -- iptables -------------------------------------------------------------------------------
def parse_iptables_save(text: str) -> dict[str, tuple[set[str], list[str]]]:
    """``iptables-save`` output as {table: (chain names, rules as written ("-A ..."))}."""
    tables: dict[str, tuple[set[str], list[str]]] = {}
    chains: set[str] = set()
    rules: list[str] = []
    for line in text.splitlines():
        if line.startswith("*"):
            chains, rules = set(), []
            tables[line[1:].strip()] = (chains, rules)
        elif line.startswith(":"):
            chains.add(line[1:].split()[0])
        elif line.startswith("-A "):
            rules.append(line.strip())
    return tables


def _jump_target(args: list[str]) -> str | None:
    for flag in ("-j", "--jump", "-g", "--goto"):
        if flag in args and args.index(flag) + 1 < len(args):
            return args[args.index(flag) + 1]
    return None


def iptables_undo(
    before: str, after: str, prefixes: tuple[str, ...] = CHAIN_PREFIXES
) -> list[list[str]]:
    """Arguments (after ``iptables``) that remove what appeared between two saves.

    Chains named with ``prefixes`` that are new go (flushed, then deleted), with every new rule
    elsewhere that jumps to one of them. Anything else is left alone, whoever added it.
    """
    old = parse_iptables_save(before)
    commands: list[list[str]] = []
    for table, (chains, rules) in parse_iptables_save(after).items():
        old_chains, old_rules = old.get(table, (set(), []))
        new_chains = sorted(c for c in chains - old_chains if c.startswith(prefixes))
        extra = Counter(rules) - Counter(old_rules)
        for rule, count in sorted(extra.items()):
            args = shlex.split(rule)
            target = _jump_target(args)
            if args[1] in new_chains or target is None or not target.startswith(prefixes):
                continue
            commands += [["-t", table, "-D", *args[1:]]] * count
        commands += [["-t", table, "-F", c] for c in new_chains]
        commands += [["-t", table, "-X", c] for c in new_chains]
    return commands


def new_empty_tables(before: str, after: str) -> list[str]:
    """Tables that did not exist before and now hold no rule and no chain of their own."""
    old = parse_iptables_save(before)
    return sorted(
        table
        for table, (chains, rules) in parse_iptables_save(after).items()
        if table not in old and not rules and chains <= BUILTIN_CHAINS
    )


# -- files and cgroups ------------------------------------------------------------------------
def new_paths(before: set[str], after: set[str]) -> list[str]:
    """The top-most paths in ``after`` that were not in ``before`` (removing them removes all)."""
    fresh = after - before
    return sorted(p for p in fresh if not any(str(a) in fresh for a in Path(p).parents))


def _tree(root: str) -> set[str]:
    if not os.path.lexists(root):
        return set()
    found = {root}
    for parent, dirs, files in os.walk(root):
        found.update(os.path.join(parent, n) for n in (*dirs, *files))
    return found


def _kubepods_cgroups() -> set[str]:
    if not CGROUP_ROOT.is_dir():
        return set()
    return {str(p) for p in CGROUP_ROOT.glob("*/kubepods")}


def cgroup_processes(root: str) -> list[int]:
    pids: list[int] = []
    for parent, _, files in os.walk(root):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                pids += map(int, Path(parent, "cgroup.procs").read_text().split())
    return pids


def kill_cgroup_processes(root: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in the cgroup tree, and wait until they are gone (rmdir needs it)."""
    deadline = time.monotonic() + timeout
    while (pids := cgroup_processes(root)) and time.monotonic() < deadline:
        for pid in pids:
            _quiet(os.kill, pid, signal.SIGKILL)
        time.sleep(0.05)  # the kernel reaps them asynchronously


def _remove_cgroup_tree(root: str) -> None:
    # cgroup directories go with rmdir, deepest first; one with processes left stays (EBUSY).
    for parent, dirs, _ in os.walk(root, topdown=False):
        for name in dirs:
            _quiet(os.rmdir, os.path.join(parent, name))
    _quiet(os.rmdir, root)


@dataclass
class HostSnapshot:
    """Host state a real node may change, taken before it starts; ``restore()`` undoes."""

    iptables: dict[str, str]
    sysctls: dict[str, str]
    paths: set[str]
    cgroups: set[str]
    # What a run that dies leaves besides: its node directory (shims, mounts), the directory to
    # delete (the cluster's, when the run made it) and its bridge.
    node_dir: str = ""
    remove_dir: str = ""
    bridge: str = ""

    def save(self, path: Path) -> None:
        """Write it where the next run finds it if this one dies without restoring."""
        state = {**self.__dict__, "paths": sorted(self.paths), "cgroups": sorted(self.cgroups)}
        path.write_text(json.dumps(state))

    @classmethod
    def recover_stale(cls, path: Path) -> bool:
        """Undo what a run that died (SIGKILL, power) left, from the state it saved."""
        if not path.exists():
            return False
        state = json.loads(path.read_text())
        stale = cls(**{**state, "paths": set(state["paths"]), "cgroups": set(state["cgroups"])})
        if stale.node_dir:
            kill_processes_with_arg(f"-address {stale.node_dir}/containerd.sock")
            unmount_under(Path(stale.node_dir))
        if stale.bridge:
            NodeNetwork(stale.bridge).delete()
        stale.restore()
        if stale.remove_dir:
            shutil.rmtree(stale.remove_dir, ignore_errors=True)  # its image store alone: 300 MB
        path.unlink(missing_ok=True)
        return True

    @classmethod
    def take(cls) -> HostSnapshot:
        return cls(
            iptables={tool: _save(tool) for tool in ("iptables", "ip6tables")},
            sysctls={name: v for name in SYSCTLS if (v := _read_sysctl(name)) is not None},
            paths=set().union(*(_tree(d) for d in WATCHED_DIRS)),
            cgroups=_kubepods_cgroups(),
        )

    def restore(self) -> None:
        for tool, before in self.iptables.items():
            for args in iptables_undo(before, _save(tool)):
                subprocess.run([tool, *args], capture_output=True)
            # iptables-nft leaves the tables it made, empty; nft can remove them.
            family = "ip" if tool == "iptables" else "ip6"
            for table in new_empty_tables(before, _save(tool)) if shutil.which("nft") else ():
                subprocess.run(["nft", "delete", "table", family, table], capture_output=True)
        for name, value in self.sysctls.items():
            if _read_sysctl(name) != value:
                _quiet(Path("/proc/sys", name).write_text, value)
        for path in new_paths(self.paths, set().union(*(_tree(d) for d in WATCHED_DIRS))):
            unmount_under(Path(path))  # network namespaces are bind mounts
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _quiet(os.unlink, path)
        for root in sorted(_kubepods_cgroups() - self.cgroups):
            kill_cgroup_processes(root)  # pods' processes outlive a killed containerd and shims
            _remove_cgroup_tree(root)


def _save(tool: str) -> str:
    save = shutil.which(f"{tool}-save")
    if save is None:
        return ""
    done = subprocess.run([save], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


# -- processes and mounts ---------------------------------------------------------------------
def kill_processes_with_arg(fragment: str) -> list[int]:
    """SIGKILL processes whose command line contains ``fragment`` (e.g. containerd shims)."""
    killed = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if fragment in text and pid != os.getpid():
            _quiet(os.kill, pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def mounts_under(mountinfo: str, root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (the order to unmount them)."""
    prefix = str(root).rstrip("/")
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: (-p.count("/"), p))


def unmount_under(root: Path) -> None:
    for point in mounts_under(Path("/proc/self/mountinfo").read_text(), root):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _run_text(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _quiet(fn: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):  # best effort: already gone, or still busy
        fn(*args)
