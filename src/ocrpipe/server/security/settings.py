"""Security settings (``OCRPIPE_*`` env vars and ``ocrpipe serve`` flags) and the start-up safety check.

Kept apart from :class:`ocrpipe.server.settings.ServiceSettings` so the security layer plugs into the
service without reshaping it; both read the same ``OCRPIPE_`` environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ocrpipe.protocol.channel import is_loopback


class SecuritySettings(BaseSettings):
    """Authentication, TLS and rate-limit settings."""

    model_config = SettingsConfigDict(env_prefix="OCRPIPE_", extra="ignore", frozen=True,
                                      use_attribute_docstrings=True)

    auth: Literal["auto", "required"] = "auto"
    """``auto``: API keys are enforced as soon as one exists (also after revoking them all);
    ``required``: enforced from the start (every request is refused until a key is created)."""
    insecure: bool = False
    """Allow serving a non-loopback address without any API key."""
    tls_cert: Path | None = None
    """Serve HTTPS (and gRPC over TLS) with this certificate (PEM; chain allowed)."""
    tls_key: Path | None = None
    """Private key of ``tls_cert`` (PEM)."""
    tls_client_ca: Path | None = None
    """When set, clients must present a certificate signed by this CA (mutual TLS)."""
    rate_limit_per_min: float = Field(default=1200.0, gt=0)
    """Default requests per minute per API key (a key's own limit wins)."""
    metrics_auth: bool = False
    """Require an ``admin`` key for ``GET /metrics``."""
    docs_auth: bool = False
    """Require a ``read`` key for ``/docs``, ``/redoc`` and ``/openapi.json`` (when keys are enforced)."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks of reverse proxies whose ``X-Forwarded-For`` names the client
    (throttles and logs then see the real address); from anyone else the header is ignored. ``Forwarded``
    is never read."""

    @model_validator(mode="after")
    def _tls_pair(self) -> SecuritySettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key (or neither)")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        for path in (self.tls_cert, self.tls_key, self.tls_client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class UnsafeBind(Exception):
    """Serving would expose the API without authentication."""


def check_bind(host: str, *, keys_exist: bool, security: SecuritySettings) -> list[str]:
    """Refuse (raise :class:`UnsafeBind`) an open API on a non-loopback address; return warnings."""
    warnings: list[str] = []
    if is_loopback(host):
        return warnings
    if not keys_exist and security.auth != "required" and not security.insecure:
        raise UnsafeBind(
            f"refusing to serve {host} without API keys: anyone who can reach it could read patient "
            "data. Create a key first (`ocrpipe keys create --name NAME --scopes submit,read`), or pass "
            "--insecure to run open on purpose.")
    if not keys_exist and security.insecure:
        warnings.append(f"serving {host} WITHOUT authentication (--insecure)")
    if not security.tls:
        warnings.append(f"serving {host} without TLS; pass --tls-cert/--tls-key or terminate TLS in front")
    return warnings
