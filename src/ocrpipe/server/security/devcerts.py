"""Throw-away certificates for tests and trials: a CA, a server certificate (localhost/127.0.0.1) and a
client certificate, written as PEM files. Never use them in production; never commit the keys.

Needs the ``cryptography`` package (a dev dependency).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CertFiles:
    """Paths of one generated set."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ocrpipe test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: Any, issuer: Any, public_key: Any, days: int) -> Any:
    from cryptography import x509

    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days)))


def make_ca(common_name: str = "ocrpipe test CA", days: int = 2) -> tuple[Any, Any]:
    """A self-signed CA: (certificate, private key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    name = _name(common_name)
    cert = (_builder(name, name, key.public_key(), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca: tuple[Any, Any], common_name: str, *, server: bool, days: int = 2,
          hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Any, Any]:
    """A leaf certificate signed by ``ca`` for a server (with SANs) or a client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert, ca_key = ca
    key = _key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    b = (_builder(_name(common_name), ca_cert.subject, key.public_key(), days)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if server:
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, cert_or_key: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    if hasattr(cert_or_key, "public_bytes") and hasattr(cert_or_key, "subject"):
        data = cert_or_key.public_bytes(serialization.Encoding.PEM)
    else:
        data = cert_or_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    path.write_bytes(data)
    if path.suffix != ".crt":
        path.chmod(0o600)
    return path


def write_set(directory: Path, prefix: str = "", hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
              ) -> CertFiles:
    """Generate CA, server and client certificates under ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(f"{prefix or 'ocrpipe'} test CA")
    server = issue(ca, hosts[0], server=True, hosts=hosts)
    client = issue(ca, f"{prefix or 'ocrpipe'} client", server=False)
    d = directory
    return CertFiles(
        ca_cert=_write(d / f"{prefix}ca.crt", ca[0]), ca_key=_write(d / f"{prefix}ca.key", ca[1]),
        server_cert=_write(d / f"{prefix}server.crt", server[0]),
        server_key=_write(d / f"{prefix}server.key", server[1]),
        client_cert=_write(d / f"{prefix}client.crt", client[0]),
        client_key=_write(d / f"{prefix}client.key", client[1]))
