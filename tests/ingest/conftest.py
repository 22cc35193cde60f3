"""Fixtures of the gRPC ingestion tests: ONE real ``ocrpipe serve --grpc-port`` process for the whole folder
(mutual TLS with throw-away certificates, API keys of two tenants, small size limits), generated printouts
on a seed the templates were not tuned on, and both database back ends for the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from .ingest_helpers import GrpcServer, Printout, create_keys, make_printouts, pg_database

MAX_UPLOAD_MB = 2
MAX_PIXELS = 4_000_000
KEYS = {"a_rw": ("submit,read", "clinic-a"), "a_read": ("read", "clinic-a"), "a_submit": ("submit", "clinic-a"),
        "b_rw": ("submit,read", "clinic-b"), "a_gone": ("submit,read", "clinic-a")}


@pytest.fixture(scope="session")
def printouts() -> dict[str, Printout]:
    return make_printouts()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throw-away CA with server/client certificates, and a second, untrusted one."""
    from ocrpipe.security.devcerts import write_set

    d = tmp_path_factory.mktemp("certs")
    return write_set(d), write_set(d, prefix="rogue-")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, certs: Any) -> Iterator[tuple[GrpcServer, dict[str, str]]]:
    """The shared server (mutual TLS; keys of clinic-a and clinic-b, ``a_gone`` revoked; 2 MB and 4 Mpx
    limits) and its keys by name."""
    data_dir = tmp_path_factory.mktemp("grpc-server")
    srv = GrpcServer(data_dir, tls=certs[0], env={"OCRPIPE_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
                                                   "OCRPIPE_MAX_PIXELS": str(MAX_PIXELS)})
    keys = create_keys(srv.db_url, KEYS, revoke=("a_gone",))
    srv.start()
    try:
        yield srv, keys
    finally:
        srv.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both back ends: a SQLite file and (when reachable) a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with pg_database() as url:
        yield url
