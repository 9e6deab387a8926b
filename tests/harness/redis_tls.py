"""A real redis-server serving TLS with a certificate from a private CA made for the test.

The server also listens in plain text on loopback, only so the harness can tell it is up; the
tests talk to ``url`` (``rediss://``), which only a client trusting ``ca`` can use.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.harness.pki import CertPair, make_ca, make_cert
from tests.harness.ports import free_port
from tests.harness.redis_server import RedisServer


class TlsRedis:
    """``bind`` as for RedisServer (e.g. a test node's bridge too); each address is in the
    server certificate, so pods can verify it at the address they use."""

    def __init__(
        self, *, bind: tuple[str, ...] = ("127.0.0.1",), extra_args: list[str] | None = None
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shoal-redis-tls-"))
        self.ca: CertPair = make_ca(self.dir, "redis-ca")
        #: Another CA, which did not sign the server's certificate.
        self.wrong_ca: CertPair = make_ca(self.dir, "wrong-ca")
        cert = make_cert(self.dir, "redis", self.ca, "redis", server=True,
                         dns_names=("localhost",), ip_addresses=bind)  # fmt: skip
        self.tls_port = free_port()
        self.server = RedisServer(bind=bind, extra_args=[
            "--tls-port", str(self.tls_port), "--tls-cert-file", str(cert.cert),
            "--tls-key-file", str(cert.key), "--tls-ca-cert-file", str(self.ca.cert),
            "--tls-auth-clients", "no", *(extra_args or []),
        ])  # fmt: skip

    @property
    def url(self) -> str:
        return self.url_at(self.server.bind[0])

    def url_at(self, address: str) -> str:
        return f"rediss://{address}:{self.tls_port}/0"

    def ca_pem(self, wrong: bool = False) -> str:
        return (self.wrong_ca if wrong else self.ca).cert.read_text()

    def __enter__(self) -> TlsRedis:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)
