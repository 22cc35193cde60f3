"""The real ``ocrpipe`` command line for the tests: ``ocrpipe serve`` started the way a user starts it (a
subprocess on free ports), waited for until ``/readyz`` answers, stopped with SIGTERM (or SIGKILL, to test
recovery); one-shot commands; and the polling helpers the tests wait with."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import httpx

from .databases import sqlite_url

if TYPE_CHECKING:
    from ocrpipe.server.security.devcerts import CertFiles

FINISHED = frozenset({"succeeded", "failed"})


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child ``ocrpipe`` process: one engine thread each (the test machine is shared)."""
    return {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1", **extra}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m ocrpipe ARGS --data-dir DATA_DIR`` to its end (the real command line), output captured."""
    return subprocess.run([sys.executable, "-m", "ocrpipe", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout, env=child_env())


def stop_process(proc: subprocess.Popen[bytes] | None, wait: float = 20.0) -> None:
    """SIGTERM (a graceful stop); SIGKILL when the process has not ended within ``wait`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def kill9(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL: no chance to clean up, as in a crash or a power cut."""
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """The first truthy ``check()``, polled every ``every`` seconds; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120, until: Collection[str] = FINISHED,
             every: float = 0.3) -> dict[str, Any]:
    """The job as ``GET /v1/jobs/{id}`` shows it once its status is one of ``until``."""

    def reached() -> dict[str, Any] | None:
        resp = client.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()
        return job if job["status"] in until else None

    result: dict[str, Any] = wait_for(reached, timeout, f"job {job_id} to reach {sorted(until)}", every)
    return result


class Server:
    """``python -m ocrpipe serve`` in a subprocess on a free port; stdout+stderr (the JSON log) go to
    ``log_path``, appended to across restarts.

    ``tls``: a :mod:`ocrpipe.server.security.devcerts` set; the server presents its certificate and requires a
    client one (mutual TLS), and the test's own HTTP calls use that set's CA and client certificate.
    """

    serve_grpc: ClassVar[bool] = False  # subclasses that also serve gRPC ingestion (on a second free port) say so
    stop_wait: ClassVar[float] = 20.0  # seconds a graceful stop may take before SIGKILL

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None,
                 tls: CertFiles | None = None) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.env = child_env(**(env or {}))
        self.tls = tls
        self.port = free_port()
        self.grpc_port = free_port() if self.serve_grpc else 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"
        self.ready_at = 0.0  # time.monotonic() when it last became ready

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """The gRPC address (``localhost`` under TLS: a name the server certificate carries)."""
        return f"{'localhost' if self.tls else '127.0.0.1'}:{self.grpc_port}"

    @property
    def db_url(self) -> str:
        """The server's database: ``--database-url`` when given, else the SQLite file in its data folder."""
        if "--database-url" in self.args:
            return self.args[self.args.index("--database-url") + 1]
        return sqlite_url(self.data_dir)

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "ocrpipe", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        # Without gRPC the port is 0 (off), never the default 50051: a free port picked for another server's
        # HTTP may be 50051, and two servers must not race for it.
        if "--grpc-port" not in self.args:
            cmd += ["--grpc-port", str(self.grpc_port)]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls.server_cert), "--tls-key", str(self.tls.server_key),
                    "--tls-client-ca", str(self.tls.ca_cert)]
        return cmd + self.args

    def http_verify(self) -> ssl.SSLContext | bool:
        """``verify`` for httpx: the set's CA and client certificate under TLS."""
        if self.tls is None:
            return True
        from ocrpipe.server.security.tls import client_ssl_context

        return client_ssl_context(self.tls.ca_cert, self.tls.client_cert, self.tls.client_key)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the server, sending ``key`` as the bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, verify=self.http_verify(), **kwargs)

    def start(self, timeout: float = 120.0) -> Self:
        """Start it and wait until ``/readyz`` answers 200 (models loaded, database reachable)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-6000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2, verify=self.http_verify()).status_code == 200:
                    self.ready_at = time.monotonic()
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log()[-6000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc, self.stop_wait)
