"""The probe and metrics server: /livez, /readyz, /startupz, /healthz, /metrics on one port (9091).

It runs on its own thread (stdlib `ThreadingHTTPServer`), not on the event loop: a liveness
probe must answer *especially* when the loop is stuck, and it then reports that the loop's
heartbeat stopped. Handlers only read plain attributes (see `worker_runtime.observing.health`).
"""

from __future__ import annotations

import asyncio
import errno
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from worker_runtime.observing.health import (
    health_of,
    heartbeat_of,
    readiness_problems,
    startup_problems,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from worker_runtime.consuming.worker import Worker


class ProbePortError(RuntimeError):
    """The probe port cannot be bound (one line, naming HEALTH_PORT)."""


class ProbeServer:
    """Worker extension serving the probes. ``port=0`` picks a free port (see `.port`)."""

    def __init__(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 9091,
        registry: CollectorRegistry | None = None,
        any_port_if_busy: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        # True when the port is only the default (HEALTH_PORT unset, outside Kubernetes):
        # a second worker on the host then serves its probes on any free port.
        self.any_port_if_busy = any_port_if_busy
        self.registry = registry
        self.worker: Worker | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("probe server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def start(self, worker: Worker) -> None:
        self.worker = worker
        handler = type("Handler", (_Handler,), {"probe": self})
        self._server = self._bind(handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="shoal-probes",
            daemon=True,
        )
        self._thread.start()

    def _bind(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        try:
            return ThreadingHTTPServer((self.host, self.requested_port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ProbePortError(
                    f"cannot serve probes on {self.host}:{self.requested_port} "
                    f"(HEALTH_HOST/HEALTH_PORT): {exc.strerror}"
                ) from None
            if not self.any_port_if_busy:
                raise ProbePortError(
                    f"HEALTH_PORT {self.requested_port} is in use (another worker on this "
                    "host?): set HEALTH_PORT to a free port, or 0 for any"
                ) from None
        server = ThreadingHTTPServer((self.host, 0), handler)
        structlog.get_logger("shoal.worker").warning(
            "default probe port in use; serving probes on a free port",
            default_port=self.requested_port,
            port=server.server_address[1],
        )
        return server

    async def stop(self, worker: Worker) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    # --- the answers (called on the server's threads) ---------------------------------------

    def livez(self) -> tuple[int, str]:
        worker = self.worker
        heartbeat = heartbeat_of(worker) if worker is not None else None
        if heartbeat is None or heartbeat.alive():
            return 200, "ok\n"
        limit = heartbeat.interval * heartbeat.missed_for_dead
        return 503, f"event loop has not heartbeated for more than {limit:g} s\n"

    def readyz(self) -> tuple[int, str]:
        return self._problems(readiness_problems)

    def startupz(self) -> tuple[int, str]:
        return self._problems(startup_problems)

    def _problems(self, check: Callable[[Any], list[str]]) -> tuple[int, str]:
        if self.worker is None:
            return 503, "not started\n"
        problems = check(self.worker)
        if problems:
            return 503, "".join(f"{p}\n" for p in problems)
        return 200, "ok\n"

    def healthz(self) -> tuple[int, str]:
        if self.worker is None:
            return 503, '{"healthy": false}\n'
        health = health_of(self.worker)
        return (200 if health.healthy else 503), health.model_dump_json() + "\n"


class _Handler(BaseHTTPRequestHandler):
    probe: ProbeServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
            return
        route = {
            "/livez": self.probe.livez,
            "/readyz": self.probe.readyz,
            "/startupz": self.probe.startupz,
            "/healthz": self.probe.healthz,
        }.get(path)
        if route is None:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")
            return
        status, body = route()
        kind = "application/json" if path == "/healthz" else "text/plain; charset=utf-8"
        self._send(status, kind, body.encode())

    def _metrics(self) -> None:
        registry = self.probe.registry
        if registry is None:
            self._send(404, "text/plain; charset=utf-8", b"metrics disabled\n")
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._send(200, content_type, encoder(registry))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(HTTPStatus(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # kubelet probes every few seconds; access logs would drown the job lines
