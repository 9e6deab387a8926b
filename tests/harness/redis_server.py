"""A private redis-server per test session (or per test), on a free loopback port.

``bind`` adds addresses (e.g. a test node bridge, so pods reach it); loopback is the default.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness.ports import free_port


def redis_server_binary() -> str:
    for name in ("redis-server", "valkey-server"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("redis-server not found on PATH: apt-get install redis-server")


class RedisServer:
    """A real Redis. ``appendonly`` keeps data across `restart()` (AOF, fsync every write
    unless ``appendfsync`` says otherwise: ``everysec`` is Redis' default)."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        port: int | None = None,
        extra_args: list[str] | None = None,
        bind: tuple[str, ...] = ("127.0.0.1",),
    ) -> None:
        if not bind:
            raise ValueError("bind: give at least one address")
        self.bind = bind
        self.port = port or free_port(bind[0])
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args or [])
        self.dir = Path(tempfile.mkdtemp(prefix="shoal-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL on the first bound address (loopback by default)."""
        return self.url_at(self.bind[0])

    def url_at(self, address: str) -> str:
        """The URL on one of the bound addresses."""
        if address not in self.bind:
            raise ValueError(f"address: {address!r} is not bound (bind={self.bind})")
        return f"redis://{address}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", *self.bind,
            # Off loopback, protected mode refuses clients without a password (test pods).
            "--protected-mode", "yes" if self.bind == ("127.0.0.1",) else "no",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.bind[0], self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Clean shutdown (SIGTERM: Redis flushes its AOF first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
