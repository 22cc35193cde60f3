"""HTTPS with mutual TLS against the real server: a verified handshake with the client certificate, and
refused handshakes (untrusted server, missing or untrusted client certificate); safe bind defaults."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx
import pytest
from testsupport.databases import create_keys
from testsupport.images import png
from testsupport.server import Server, run_cli

from ocrpipe.server.security.tls import client_ssl_context

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    good, _ = certs
    data = tmp_path_factory.mktemp("tls")
    srv = Server(data, "--metrics-auth", tls=good)  # mutual TLS with the good set
    keys = create_keys(srv.db_url, {"clinic": {"scopes": "submit,read"}, "ops": {"scopes": "admin"}})
    srv.key = keys["clinic"]  # type: ignore[attr-defined]
    srv.admin_key = keys["ops"]  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def test_mutual_tls_handshake_and_a_job_over_https(server: Server) -> None:
    with server.client(server.key) as c:  # type: ignore[attr-defined]
        resp = c.post("/v1/jobs", files={"file": ("a.png", png(), "image/png")})
        assert resp.status_code == 202, resp.text
        assert resp.headers["strict-transport-security"].startswith("max-age=")
        assert c.get(f"/v1/jobs/{resp.json()['id']}").status_code == 200
        with server.client() as anonymous:
            assert anonymous.get("/v1/jobs").status_code == 401  # TLS does not replace the API key


def test_metrics_can_require_an_admin_key(server: Server) -> None:
    with server.client() as anonymous, server.client(server.key) as clinic, \
            server.client(server.admin_key) as admin:  # type: ignore[attr-defined]
        assert anonymous.get("/metrics").status_code == 401
        assert clinic.get("/metrics").status_code == 403
        resp = admin.get("/metrics")
        assert resp.status_code == 200 and "ocrpipe" in resp.text
        assert anonymous.get("/healthz").status_code == 200  # probes stay open


def test_client_refuses_a_server_signed_by_an_unknown_ca(server: Server, certs) -> None:  # type: ignore[no-untyped-def]
    good, rogue = certs
    ctx = client_ssl_context(rogue.ca_cert, good.client_cert, good.client_key)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url + "/healthz", verify=ctx)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url + "/healthz")  # the system trust store does not know the test CA


def test_server_refuses_clients_without_a_trusted_certificate(server: Server, certs) -> None:  # type: ignore[no-untyped-def]
    good, rogue = certs
    for ctx in (client_ssl_context(good.ca_cert),  # no client certificate
                client_ssl_context(good.ca_cert, rogue.client_cert, rogue.client_key)):  # unknown issuer
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(server.url + "/healthz", verify=ctx).raise_for_status()


def test_plain_http_is_not_served_on_the_tls_port(server: Server) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).raise_for_status()


def test_server_certificate_matches_the_requested_host(server: Server, certs) -> None:  # type: ignore[no-untyped-def]
    good, _ = certs
    ctx = client_ssl_context(good.ca_cert, good.client_cert, good.client_key)
    with (socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
          pytest.raises(ssl.SSLCertVerificationError, match="mismatch|doesn't match")):
        ctx.wrap_socket(raw, server_hostname="clinic.example.org")


def test_serve_refuses_an_open_non_loopback_bind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", data_dir=tmp_path / "open")
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without API keys" in result.stderr
    assert "--insecure" in result.stderr
