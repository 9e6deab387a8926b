"""Run the test cluster by hand: ``python -m tests.harness.k8s_cli up|down|env --dir DIR``.

``up`` starts a cluster in DIR, prints ``export KUBECONFIG=...`` and stays in the foreground
until Ctrl-C, SIGTERM or ``down --dir DIR`` (which signals the pid that ``up`` wrote).
DIR is kept after ``down`` so its logs stay readable; ``up`` wipes it first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from .k8s import KubeCluster, kubectl_path
from .waiting import wait_until

MARKER = ".shoal-k8s"  # only a directory holding this is ever wiped


def _up(directory: Path, nodes: int) -> int:
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            print(
                f"{directory} is not empty and not a Shoal test-cluster dir; refusing to wipe it",
                file=sys.stderr,
            )
            return 2
        if _running_pid(directory):
            print(
                f"a cluster is already running in {directory}; run: down --dir {directory}",
                file=sys.stderr,
            )
            return 1
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).touch()
    cluster = KubeCluster(nodes=nodes, directory=directory)
    # Turn SIGTERM (from `down`) into the same clean exit path as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        cluster.start()
        env = f"export KUBECONFIG={cluster.kubeconfig}\nexport PATH={kubectl_path().parent}:$PATH\n"
        (directory / "env").write_text(env)
        (directory / "pid").write_text(f"{os.getpid()}\n")
        print(
            f"# cluster up in {cluster.startup_seconds:.1f}s; logs in {directory / 'logs'}",
            file=sys.stderr,
        )
        print(env, end="", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        (directory / "pid").unlink(missing_ok=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _running_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / "pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _down(directory: Path) -> int:
    pid = _running_pid(directory)
    if pid is None:
        print(f"no cluster running in {directory}", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: _running_pid(directory) is None, 30, 0.2, description=f"pid {pid} to exit")
    return 0


def _env(directory: Path) -> int:
    if _running_pid(directory) is None:
        print(
            f"no cluster running in {directory}; start one with: up --dir {directory}",
            file=sys.stderr,
        )
        return 1
    print((directory / "env").read_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.k8s_cli", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "env"))
    parser.add_argument(
        "--dir", type=Path, default=Path(f"/tmp/shoal-k8s-{os.getuid()}"), help="cluster directory"
    )
    parser.add_argument("--nodes", type=int, default=1, help="kwok nodes to create (up)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    directory = args.dir.resolve()
    if args.command == "up":
        return _up(directory, args.nodes)
    rc = _down(directory) if args.command == "down" else _env(directory)
    if args.command == "down":
        print(f"# stopped in {time.monotonic() - start:.1f}s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
