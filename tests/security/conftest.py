"""Fixtures of the security tests: a real ``ocrpipe serve`` process (HTTP or HTTPS, optionally mTLS) on a
free port, API keys created in its database, throw-away certificates, and a marker page image."""

from __future__ import annotations

import io
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrpipe.security.keys import KeyStore
from ocrpipe.service.db import get_engine, migrate

FONT = "/usr/share/fonts/truetype/nanum/NanumGothic.ttf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'ocrpipe.db').resolve()}"


def create_keys(data_dir: Path, specs: dict[str, dict[str, Any]], url: str | None = None) -> dict[str, str]:
    """Create keys ``name -> {scopes, tenant?, rate_limit?}`` in the server's database; returns name -> key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = get_engine(url or db_url(data_dir))
    migrate(engine)
    store = KeyStore(engine)
    out = {}
    for name, spec in specs.items():
        _, out[name] = store.create(name, spec["scopes"], spec.get("tenant"), spec.get("rate_limit"))
    engine.dispose()
    return out


def run_cli(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m ocrpipe ARGS --data-dir DATA_DIR`` (the real command line)."""
    env = {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ocrpipe", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout, env=env)


class SecServer:
    """``python -m ocrpipe serve`` in a subprocess; stdout+stderr (the JSON log) go to ``log_path``."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None,
                 tls_ca: Path | None = None, client_cert: tuple[Path, Path] | None = None) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.env = {**os.environ, "OCRPIPE_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
        self.port = free_port()
        self.tls_ca = tls_ca
        self.client_cert = client_cert
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    def verify(self) -> ssl.SSLContext | bool:
        if self.tls_ca is None:
            return True
        from ocrpipe.security.tls import client_ssl_context

        cert, key = self.client_cert or (None, None)
        return client_ssl_context(self.tls_ca, cert, key)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, verify=self.verify(), **kwargs)

    def start(self, timeout: float = 120.0) -> SecServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        cmd = [sys.executable, "-m", "ocrpipe", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2, verify=self.verify()).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = client.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        if resp.json()["status"] in ("succeeded", "failed"):
            return resp.json()
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def text_page(lines: list[str], size: int = 40) -> bytes:
    """A white PNG page with ``lines`` rendered in a Korean font (the real engine reads it)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, size)
    img = Image.new("RGB", (1000, 60 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 90 * i), line, font=font, fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png(width: int = 64, height: int = 32) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


PG_ADMIN_URL = os.environ.get("OCRPIPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def pg_database() -> Iterator[str]:
    """A throw-away PostgreSQL database (skips the test when the local server is not reachable)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except Exception:  # noqa: BLE001
        pytest.skip("local PostgreSQL is not reachable")
    name = f"ocrpipe_sec_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throw-away CA with server (localhost/127.0.0.1) and client certificates, plus a second,
    untrusted CA with its own client and server certificates."""
    from ocrpipe.security.devcerts import write_set

    d = tmp_path_factory.mktemp("certs")
    return write_set(d), write_set(d, prefix="rogue-")
