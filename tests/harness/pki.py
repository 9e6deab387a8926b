"""Throw-away PKI for the test cluster: a CA, certificates it signs, and a signing key pair.

Uses the ``cryptography`` package when it is installed and the ``openssl`` command
otherwise, so the harness needs no extra Python dependency. Keys are ECDSA P-256: they are
generated in microseconds (RSA-2048 costs ~100 ms each) and Kubernetes accepts them for
serving, client and service-account signing alike.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_CRYPTOGRAPHY = False

VALID_DAYS = 2  # a test cluster lives minutes; short validity limits leaked files' use


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def default_backend() -> str:
    return "cryptography" if HAVE_CRYPTOGRAPHY else "openssl"


def make_key_pair(directory: Path, name: str, backend: str | None = None) -> CertPair:
    """Write ``name.key`` and ``name.pub`` (PEM); the pair's ``cert`` is the public key."""
    key, pub = directory / f"{name}.key", directory / f"{name}.pub"
    if (backend or default_backend()) == "cryptography":
        private = ec.generate_private_key(ec.SECP256R1())
        _write_key(key, private)
        pub.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    else:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        _openssl("pkey", "-in", key, "-pubout", "-out", pub)
    return CertPair(cert=pub, key=key)


def make_ca(directory: Path, name: str, backend: str | None = None) -> CertPair:
    """Write a self-signed CA certificate and its key."""
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    if (backend or default_backend()) == "cryptography":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
        )
        pair.cert.write_bytes(
            builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        _write_key(pair.key, key)
    else:
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pair.key
        )
        _openssl(
            "req", "-x509", "-new", "-key", pair.key, "-subj", f"/CN={name}",
            "-days", str(VALID_DAYS),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", pair.cert,
        )  # fmt: skip
    return pair


def make_cert(
    directory: Path,
    name: str,
    ca: CertPair,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    backend: str | None = None,
) -> CertPair:
    """Write a leaf certificate signed by ``ca`` (server and/or client usage)."""
    pair = CertPair(directory / f"{name}.crt", directory / f"{name}.key")
    usages = (["serverAuth"] if server else []) + (["clientAuth"] if client else [])
    if (backend or default_backend()) == "cryptography":
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # make_ca writes only EC keys
            raise TypeError(f"{ca.key} is not an EC private key")
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        oids = {
            "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
            "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
        }
        builder = (
            _builder(subject, ca_cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([oids[u] for u in usages]), critical=False)
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        pair.cert.write_bytes(
            builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        _write_key(pair.key, key)
        return pair
    subject_text = "".join(f"/O={o}" for o in organizations) + f"/CN={common_name}"
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    sans_text = ",".join([f"DNS:{d}" for d in dns_names] + [f"IP:{i}" for i in ip_addresses])
    if sans_text:
        ext.append(f"subjectAltName={sans_text}")
    with tempfile.TemporaryDirectory() as tmp:
        csr, extfile = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        extfile.write_text("\n".join(ext) + "\n")
        _openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pair.key
        )
        _openssl("req", "-new", "-key", pair.key, "-subj", subject_text, "-out", csr)
        _openssl(
            "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
            "-days", str(VALID_DAYS), "-extfile", extfile, "-out", pair.cert,
        )  # fmt: skip
    return pair


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    # Back-date by an hour so a slightly skewed clock never sees a not-yet-valid certificate.
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
