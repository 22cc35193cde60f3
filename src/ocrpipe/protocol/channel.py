"""Opening a channel to the ``ocrpipe.v1.Ingest`` service, shared by the upload client, the tests and the
server's own checks: TLS / mutual TLS credentials, the API key on every call, and whether a host is this
machine. Nothing here depends on the server.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import grpc


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read(path: str | Path | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def grpc_channel_credentials(ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                             key_file: str | Path | None = None) -> Any:
    """``grpc.ChannelCredentials`` for ``grpc.secure_channel``: verify the server, optionally mTLS."""
    return grpc.ssl_channel_credentials(root_certificates=_read(ca_file), private_key=_read(key_file),
                                        certificate_chain=_read(cert_file))


# ---- the channel -------------------------------------------------------------------------------------


class _ClientCallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


class ApiKeyClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <key>`` to every call (works on plain and TLS channels alike)."""

    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _details(self, details: Any) -> _ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0].lower() != "authorization"]
        return _ClientCallDetails(details, [*metadata, self._header])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


def client_channel(target: str, *, api_key: str | None = None, tls: bool = False, ca_file: Any = None,
                   cert_file: Any = None, key_file: Any = None) -> grpc.Channel:
    """A channel for the upload client: TLS verifying the server against ``ca_file`` (else the system
    store) when ``tls`` or any file is given, a client certificate for mutual TLS, and the API key."""
    if tls or ca_file or cert_file:
        channel = grpc.secure_channel(target, grpc_channel_credentials(ca_file, cert_file, key_file))
    else:
        channel = grpc.insecure_channel(target)
    if api_key:
        channel = grpc.intercept_channel(channel, ApiKeyClientInterceptor(api_key))
    return channel
