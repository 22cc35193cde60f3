"""TLS helpers shared by the HTTP server, the gRPC server and the clients.

Servers: :func:`uvicorn_ssl_options` (HTTPS) and :func:`grpc_server_credentials` (gRPC); with a client
CA both require and verify a client certificate (mutual TLS). Clients: :func:`client_ssl_context`
(httpx and other ``ssl``-based clients) verifies the server against the system trust store or a given CA
file and can present a client certificate; the gRPC client side is :mod:`ocrpipe.protocol.channel`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from ocrpipe.server.security.settings import SecuritySettings


def uvicorn_ssl_options(security: SecuritySettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (empty without TLS)."""
    if not security.tls:
        return {}
    opts: dict[str, Any] = {"ssl_certfile": str(security.tls_cert), "ssl_keyfile": str(security.tls_key)}
    if security.tls_client_ca is not None:
        opts["ssl_ca_certs"] = str(security.tls_client_ca)
        opts["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return opts


def client_ssl_context(ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                       key_file: str | Path | None = None) -> ssl.SSLContext:
    """A verifying client context: trusts ``ca_file`` (else the system store), presents a client cert."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return ctx


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def grpc_server_credentials(cert_file: str | Path, key_file: str | Path,
                            client_ca: str | Path | None = None) -> Any:
    """``grpc.ServerCredentials`` for ``server.add_secure_port``; client certs required with ``client_ca``."""
    import grpc

    return grpc.ssl_server_credentials(
        [(Path(key_file).read_bytes(), Path(cert_file).read_bytes())],
        root_certificates=_read(client_ca), require_client_auth=client_ca is not None)
