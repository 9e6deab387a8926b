"""A real 3-master Redis Cluster on loopback (``redis-server --cluster-enabled yes``)."""

from __future__ import annotations

import shutil
import subprocess
import time

from tests.harness.ports import free_port
from tests.harness.redis_server import RedisServer


class RedisClusterServers:
    """Three cluster-enabled redis-servers joined with `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3) -> None:
        # An explicit bus port: the default (port + 10000) overflows for high ephemeral ports.
        self.nodes = [
            RedisServer(extra_args=["--cluster-enabled", "yes", "--cluster-port", str(free_port())])
            for _ in range(masters)
        ]

    @property
    def url(self) -> str:
        """Seed node in the runtime's cluster URL form (see worker_runtime.redis_io.connection)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 20.0) -> RedisClusterServers:
        cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found on PATH: apt-get install redis-tools")
        for node in self.nodes:
            node.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while (
                b"cluster_state:ok"
                not in subprocess.run(
                    [cli, "-p", str(node.port), "cluster", "info"], capture_output=True, check=False
                ).stdout
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cluster node {node.port} never reported cluster_state:ok")
                time.sleep(0.05)
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
