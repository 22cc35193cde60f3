"""Helpers of the gRPC ingestion tests: the real ``ocrpipe serve --grpc-port`` process, API keys in its
database, generated printouts, gRPC error codes, read-only looks at the database, throw-away PostgreSQL.

(A plain module, not a package: a ``tests/grpc`` package would shadow the ``grpc`` library.)"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from ocrpipe.grpc import ingest_pb2, ingest_pb2_grpc
from ocrpipe.security.grpc_auth import client_channel
from ocrpipe.security.keys import KeyStore
from ocrpipe.service.db import get_engine, migrate

SEED = 5150  # templates were checked on seed 11; template tests use 777, the benchmark 2026, the client 4242
ENV = {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"}
PG_ADMIN_URL = os.environ.get("OCRPIPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ERROR_CODE = "ocrpipe-error-code"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(image: np.ndarray | None = None, size: tuple[int, int] = (64, 32)) -> bytes:
    """PNG bytes of ``image`` (RGB array), or of a white image of ``size``."""
    from PIL import Image

    img = Image.fromarray(image) if image is not None else Image.new("RGB", size, "white")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class Printout:
    """A generated printout: PNG bytes and ground truth (``fields``: name -> {text, value, type})."""

    layout: str
    data: bytes
    truth: dict[str, Any]


def make_printouts(seed: int = SEED) -> dict[str, Printout]:
    """One scanned printout per layout."""
    from ocrpipe.printouts import LAYOUTS, make_page

    rng = np.random.default_rng(seed)
    out = {}
    for key in sorted(LAYOUTS):
        img, truth = make_page(LAYOUTS[key], rng)
        out[key] = Printout(key, png(img), truth)
    return out


def create_keys(db: str, specs: dict[str, tuple[str, str]], revoke: tuple[str, ...] = ()) -> dict[str, str]:
    """Keys ``name -> (scopes, tenant)`` in the database at ``db``; returns name -> secret."""
    engine = get_engine(db)
    migrate(engine)
    store = KeyStore(engine)
    out = {name: store.create(name, scopes, tenant)[1] for name, (scopes, tenant) in specs.items()}
    for name in revoke:
        store.revoke(name)
    engine.dispose()
    return out


class GrpcServer:
    """``python -m ocrpipe serve --grpc-port`` in a subprocess (its JSON log goes to ``log_path``)."""

    def __init__(self, data_dir: Path, *args: str, tls: Any = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.tls = tls  # devcerts.CertFiles: the server presents its certificate and requires a client one
        self.env = {**ENV, **(env or {})}
        self.port = free_port()
        self.grpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def db_url(self) -> str:
        if "--database-url" in self.args:
            return self.args[self.args.index("--database-url") + 1]
        return f"sqlite:///{(self.data_dir / 'ocrpipe.db').resolve()}"

    @property
    def target(self) -> str:
        return f"localhost:{self.grpc_port}" if self.tls else f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "ocrpipe", "serve", "--port", str(self.port), "--grpc-port",
               str(self.grpc_port), "--data-dir", str(self.data_dir), *self.args]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls.server_cert), "--tls-key", str(self.tls.server_key),
                    "--tls-client-ca", str(self.tls.ca_cert)]
        return cmd

    def http_verify(self) -> Any:
        if not self.tls:
            return True
        from ocrpipe.security.tls import client_ssl_context

        return client_ssl_context(self.tls.ca_cert, self.tls.client_cert, self.tls.client_key)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> GrpcServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2, verify=self.http_verify()).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def channel(self, key: str | None = None, **tls: Any) -> grpc.Channel:
        """A channel with ``key``; over TLS with the server's CA and the client certificate unless overridden."""
        if self.tls:
            tls = {"ca_file": self.tls.ca_cert, "cert_file": self.tls.client_cert,
                   "key_file": self.tls.client_key, **tls}
        return client_channel(self.target, api_key=key, **tls)

    def stub(self, key: str | None = None, **tls: Any) -> ingest_pb2_grpc.IngestStub:
        return ingest_pb2_grpc.IngestStub(self.channel(key, **tls))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


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


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@contextmanager
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database (skips the test when the local server is not reachable)."""
    if not pg_available():
        pytest.skip("local PostgreSQL is not reachable")
    import psycopg

    name = f"ocrpipe_grpc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
