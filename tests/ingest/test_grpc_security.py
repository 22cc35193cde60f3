"""Security of the real gRPC server: keys (none, revoked → UNAUTHENTICATED), scopes (→ PERMISSION_DENIED),
tenants (another tenant's job is NOT_FOUND exactly like a missing one, and never streamed), the TLS
handshake (refused with an untrusted CA or without a client certificate), and the start-up rules
(an open non-loopback bind without keys is refused; an explicit gRPC port that is taken stops the start)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from testsupport.images import png
from testsupport.server import free_port, run_cli

from ocrpipe.protocol import ingest_pb2 as pb

from .ingest_helpers import GrpcServer, Printout, error_code, query, rpc_error, wait_result

pytestmark = pytest.mark.integration
Server = tuple[GrpcServer, dict[str, str]]


def _calls(stub: Any) -> dict[str, Any]:
    return {
        "Submit": lambda: stub.Submit(pb.SubmitRequest(image=png()), timeout=30),
        "GetResult": lambda: stub.GetResult(pb.GetResultRequest(job_id="0" * 32), timeout=30),
        "WatchResults": lambda: list(stub.WatchResults(pb.WatchRequest(job_ids=["0" * 32]), timeout=30)),
    }


def test_keys_and_scopes(server: Server) -> None:
    srv, keys = server
    for key in (None, keys["a_gone"], "ocp_0123456789ab_" + "x" * 43):  # none, revoked, unknown
        for name, call in _calls(srv.stub(key)).items():
            assert rpc_error(call).code() == grpc.StatusCode.UNAUTHENTICATED, (key, name)
    assert rpc_error(_calls(srv.stub(keys["a_read"]))["Submit"]).code() == grpc.StatusCode.PERMISSION_DENIED
    submit_only = _calls(srv.stub(keys["a_submit"]))
    for name in ("GetResult", "WatchResults"):
        assert rpc_error(submit_only[name]).code() == grpc.StatusCode.PERMISSION_DENIED, name


def test_other_tenants_jobs_are_invisible(server: Server, printouts: dict[str, Printout]) -> None:
    srv, keys = server
    a, b = srv.stub(keys["a_rw"]), srv.stub(keys["b_rw"])
    a_job = a.Submit(pb.SubmitRequest(image=printouts["nct_v1"].data), timeout=30).job_id
    b_job = b.Submit(pb.SubmitRequest(image=printouts["va_v1"].data), timeout=30).job_id
    assert wait_result(a, a_job).status == wait_result(b, b_job).status == "succeeded"

    theirs = rpc_error(lambda: b.GetResult(pb.GetResultRequest(job_id=a_job), timeout=30))
    missing = rpc_error(lambda: b.GetResult(pb.GetResultRequest(job_id="0" * 32), timeout=30))
    assert (theirs.code(), error_code(theirs), theirs.details()) == \
        (missing.code(), error_code(missing), missing.details()) == \
        (grpc.StatusCode.NOT_FOUND, "job_not_found", missing.details())

    listed = list(b.WatchResults(pb.WatchRequest(job_ids=[a_job, b_job]), timeout=60))
    assert [r.job_id for r in listed] == [b_job]  # a's id is ignored like an unknown one
    assert list(b.WatchResults(pb.WatchRequest(job_ids=[a_job]), timeout=60)) == []

    seen = []
    stream = b.WatchResults(pb.WatchRequest(since_unix_ms=0), timeout=8)  # everything b may see, then wait
    with pytest.raises(grpc.RpcError) as info:
        for res in stream:
            seen.append(res.job_id)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    a_jobs = {r[0] for r in query(srv.db_url, "SELECT id FROM ocr_jobs WHERE tenant = 'clinic-a'")}
    assert b_job in seen and not a_jobs & set(seen)


def test_tls_handshake(server: Server, certs: Any) -> None:
    srv, keys = server
    good, rogue = certs
    ok = health_pb2_grpc.HealthStub(srv.channel(keys["a_rw"]))
    assert ok.Check(health_pb2.HealthCheckRequest(), timeout=30).status == health_pb2.HealthCheckResponse.SERVING
    refused = [
        {"ca_file": rogue.ca_cert},  # the server's certificate is not from this CA
        {"cert_file": None, "key_file": None},  # no client certificate
        {"cert_file": rogue.client_cert, "key_file": rogue.client_key},  # client certificate from another CA
    ]
    for tls in refused:
        stub = health_pb2_grpc.HealthStub(srv.channel(keys["a_rw"], **tls))
        err = rpc_error(lambda stub=stub: stub.Check(health_pb2.HealthCheckRequest(), timeout=10))
        assert err.code() == grpc.StatusCode.UNAVAILABLE, tls
    plain = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}"))
    err = rpc_error(lambda: plain.Check(health_pb2.HealthCheckRequest(), timeout=10))
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def _serve(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("serve", "--port", str(free_port()), *args, data_dir=data_dir)


def test_open_bind_without_keys_is_refused(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--host", "0.0.0.0", "--grpc-port", str(free_port()))
    assert done.returncode == 2 and "refusing to serve 0.0.0.0 without API keys" in done.stderr


def test_an_explicit_grpc_port_that_is_taken_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        start = time.monotonic()
        done = _serve(tmp_path, "--grpc-port", str(taken.getsockname()[1]))
    assert done.returncode != 0, f"server kept running for {time.monotonic() - start:.0f} s"
    assert "cannot serve gRPC on 127.0.0.1" in done.stdout + done.stderr
