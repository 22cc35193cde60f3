"""The real client and server over mutual TLS with API keys: the client verifies the server against the
clinic's CA and presents its certificate; an untrusted server certificate, a missing or untrusted client
certificate, no key or a key without the submit scope are all refused (exit 3, the status in the message)
and create no job; plaintext to another machine is refused before connecting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from testsupport.databases import create_keys

from ocrpipe.server.security.devcerts import CertFiles

from .conftest import ENV, GrpcServer, WatchClient, drop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory,
               certs: tuple[CertFiles, CertFiles]) -> Any:
    server = GrpcServer(tmp_path_factory.mktemp("tls-server"), tls=certs[0])
    keys = create_keys(server.db_url, {"clinic-pc": {"scopes": "submit,read", "tenant": "clinic-a"},
                                       "viewer": {"scopes": "read", "tenant": "clinic-a"}})
    server.start()
    yield server, keys
    server.stop()


def send(server: GrpcServer, file: Path, *opts: str, key: str | None = None,
         deadline: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in ENV.items() if k != "OCRPIPE_API_KEY"}
    if key:
        env["OCRPIPE_API_KEY"] = key
    cmd = [sys.executable, "-m", "ocrpipe", "client", "send", str(file), "--server", server.target,
           "--deadline", str(deadline), *opts]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=deadline + 60)


def _mtls(certs: CertFiles) -> tuple[str, ...]:
    return ("--ca-file", str(certs.ca_cert), "--client-cert", str(certs.client_cert), "--client-key",
            str(certs.client_key))


def test_send_over_mutual_tls_with_a_key(tls_server: Any, certs: tuple[CertFiles, CertFiles],
                                         printouts: list[Path]) -> None:
    server, keys = tls_server
    good, _ = certs
    done = send(server, printouts[0], *_mtls(good), "--wait", key=keys["clinic-pc"])
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "succeeded" and doc["mode"] == "template" and doc["fields"]
    assert doc["template"] == json.loads(printouts[0].with_suffix(".json").read_text())["template"]
    again = send(server, printouts[0], *_mtls(good), key=keys["clinic-pc"])  # same content: same job
    assert again.returncode == 0 and again.stdout.strip() == doc["job_id"]


@pytest.mark.parametrize("case", ["untrusted_server", "no_client_cert", "untrusted_client_cert", "no_key",
                                  "read_only_key", "plaintext"])
def test_refused_connections_create_no_job(case: str, tls_server: Any, certs: tuple[CertFiles, CertFiles],
                                           printouts: list[Path]) -> None:
    server, keys = tls_server
    good, rogue = certs
    opts, key, expected = {
        "untrusted_server": (("--ca-file", str(rogue.ca_cert), "--client-cert", str(good.client_cert),
                              "--client-key", str(good.client_key)), keys["clinic-pc"], "UNAVAILABLE"),
        "no_client_cert": (("--ca-file", str(good.ca_cert)), keys["clinic-pc"], "UNAVAILABLE"),
        "untrusted_client_cert": (("--ca-file", str(good.ca_cert), "--client-cert", str(rogue.client_cert),
                                   "--client-key", str(rogue.client_key)), keys["clinic-pc"], "UNAVAILABLE"),
        "no_key": (_mtls(good), None, "UNAUTHENTICATED"),
        "read_only_key": (_mtls(good), keys["viewer"], "PERMISSION_DENIED"),
        "plaintext": (("--insecure",), keys["clinic-pc"], "UNAVAILABLE"),
    }[case]
    before = server.query("SELECT COUNT(*) FROM ocr_jobs")[0][0]
    refused = send(server, printouts[1], *opts, key=key, deadline=3)
    assert refused.returncode == 3, (refused.returncode, refused.stdout, refused.stderr)
    assert "not sent" in refused.stderr and f"[{expected}" in refused.stderr, refused.stderr
    if case == "untrusted_server":
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert refused.stdout == ""
    assert server.query("SELECT COUNT(*) FROM ocr_jobs")[0][0] == before


def test_plaintext_to_another_machine_is_refused_before_connecting(printouts: list[Path]) -> None:
    cmd = [sys.executable, "-m", "ocrpipe", "client", "send", str(printouts[0]), "--server", "192.0.2.10:50051",
           "--insecure"]
    refused = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
    assert refused.returncode == 2 and "[insecure_remote]" in refused.stderr


def test_watch_over_mutual_tls(tmp_path: Path, tls_server: Any, certs: tuple[CertFiles, CertFiles],
                               printouts: list[Path]) -> None:
    server, keys = tls_server
    good, _ = certs
    folder = tmp_path / "in"
    folder.mkdir()
    for p in printouts[2:4]:
        drop(p, folder)
    client = WatchClient(tmp_path, folder, server.target, *_mtls(good), "--exit-when-idle")
    client.env["OCRPIPE_API_KEY"] = keys["clinic-pc"]
    client.start()
    assert client.proc is not None
    assert client.proc.wait(180) == 0, client.log()
    assert sorted(name for _, _, name in client.hook_runs()) == sorted(p.name for p in printouts[2:4])
