"""A private PostgreSQL for tests: ``initdb`` into a temp dir, ``pg_ctl`` start/stop, loopback only.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server runs as
an unprivileged OS user (``postgres`` from Debian's package, else one we create). Missing
binaries are an error, not a skip: CI installs them (``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.harness.ports import free_port

#: The OS user a root test run uses for the server.
SERVICE_USERS = ("postgres", "shoal-pg")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed."""


def postgres_bin_dir() -> Path:
    """Where ``initdb``/``pg_ctl`` live: PATH first, then Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    )


def _service_user() -> str | None:
    """None when not root (run as ourselves); else an unprivileged user, created if needed."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = SERVICE_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return name


class PostgresServer:
    """A real PostgreSQL on 127.0.0.1; `stop()`/`start()` keep the data and the port."""

    def __init__(self, *, port: int | None = None, user: str = "shoal") -> None:
        self.bin = postgres_bin_dir()
        self.port = port or free_port()
        self.db_user = user
        self.os_user = _service_user()
        self.root = Path(tempfile.mkdtemp(prefix="shoal-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._initialised = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL (asyncpg) for the ``postgres`` database, trust auth on loopback."""
        return f"postgresql+asyncpg://{self.db_user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.os_user is not None:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{log}"
            )

    def _init(self) -> None:
        if self.os_user is not None:
            shutil.chown(self.root, user=self.os_user)
            os.chmod(self.root, 0o700)
        self._run(
            "initdb", "-D", str(self.data), "-U", self.db_user, "--auth=trust",
            "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        self._initialised = True

    def start(self, timeout: float = 30.0) -> PostgresServer:
        if not self._initialised:
            self._init()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.accepting():
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL did not listen on port {self.port}")
            time.sleep(0.05)
        return self

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, like a database going away."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
