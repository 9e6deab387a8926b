"""``/healthz`` served from its own thread, so a stalled event loop gets an answer (500).

kopf's liveness endpoint runs on the event loop it reports on: when that loop blocks, the probe
hangs until the kubelet's timeout instead of saying why. Here the scaling loop stamps each pass
(leader or not) and a daemon thread answers from the stamp alone: 200 while passes are recent,
500 naming the stall otherwise. A pass slowed by an API brownout (retries, timeouts) stays well
under the limit, so a short brownout never restarts the operator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Check = Callable[[], tuple[bool, dict[str, Any]]]


class Heartbeat:
    """The last time the scaling loop finished a pass (monotonic); read from any thread."""

    def __init__(self, *, stall_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._last = clock()
        self.leading: Callable[[], bool] = lambda: True

    def beat(self) -> None:
        self._last = self._clock()

    def check(self) -> tuple[bool, dict[str, Any]]:
        age = self._clock() - self._last
        if age > self.stall_seconds:
            return False, {"error": f"the scaling loop has not finished a pass for {age:.0f} s"}
        return True, {"scaling_loop": round(age, 3), "leader": self.leading()}


def serve(check: Check, *, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``GET /healthz`` from a daemon thread; ``shutdown()`` the result to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404)
                return
            ok, body = check()
            data = json.dumps(body).encode()
            self.send_response(200 if ok else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # probes every few seconds are not worth a log line

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server
