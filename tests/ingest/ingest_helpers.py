"""Helpers of the gRPC ingestion tests: the real server with gRPC on (channels and stubs to it), generated
printouts, gRPC error codes, and read-only looks at the database.

(A plain module, not a package: a ``tests/grpc`` package would shadow the ``grpc`` library.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from testsupport.images import encode_png
from testsupport.server import Server

from ocrpipe.protocol import ingest_pb2, ingest_pb2_grpc
from ocrpipe.protocol.channel import client_channel
from ocrpipe.server.storage.db import get_engine

SEED = 5150  # templates were checked on seed 11; template tests use 777, the benchmark 2026, the client 4242
ERROR_CODE = "ocrpipe-error-code"


@dataclass(frozen=True)
class Printout:
    """A generated printout: PNG bytes and ground truth (``fields``: name -> {text, value, type})."""

    layout: str
    data: bytes
    truth: dict[str, Any]


def make_printouts(seed: int = SEED) -> dict[str, Printout]:
    """One scanned printout per layout."""
    from ocrpipe.synth.printouts import LAYOUTS, make_page

    rng = np.random.default_rng(seed)
    out = {}
    for key in sorted(LAYOUTS):
        img, truth = make_page(LAYOUTS[key], rng)
        out[key] = Printout(key, encode_png(img), truth)
    return out


class GrpcServer(Server):
    """``python -m ocrpipe serve --grpc-port`` (with ``tls``: mutual TLS on both ports)."""

    serve_grpc = True
    stop_wait = 30.0  # open result streams are ended before the process exits

    def channel(self, key: str | None = None, **tls: Any) -> grpc.Channel:
        """A channel with ``key``; over TLS with the server's CA and the client certificate unless overridden."""
        if self.tls:
            tls = {"ca_file": self.tls.ca_cert, "cert_file": self.tls.client_cert,
                   "key_file": self.tls.client_key, **tls}
        return client_channel(self.target, api_key=key, **tls)

    def stub(self, key: str | None = None, **tls: Any) -> ingest_pb2_grpc.IngestStub:
        return ingest_pb2_grpc.IngestStub(self.channel(key, **tls))


def wait_result(stub: ingest_pb2_grpc.IngestStub, job_id: str, timeout: float = 180) -> ingest_pb2.JobResult:
    """Poll GetResult until the job finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = stub.GetResult(ingest_pb2.GetResultRequest(job_id=job_id), timeout=30)
        if res.status in ("succeeded", "failed"):
            return res
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def rpc_error(fn: Callable[[], Any]) -> grpc.RpcError:
    """The error a call raises (fails the test when it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def error_code(err: grpc.RpcError) -> str | None:
    """The stable code in the trailing metadata."""
    return dict(err.trailing_metadata() or ()).get(ERROR_CODE)


def query(db: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` from the server's database (a read-only look from the test)."""
    from sqlalchemy import text

    engine = get_engine(db)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()
