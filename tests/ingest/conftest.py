"""Fixtures of the gRPC ingestion tests: one real ``ocrpipe serve --grpc-port`` process for the whole folder
(mutual TLS with throw-away certificates, API keys of two tenants, small size limits) and generated printouts
on a seed the templates were not tuned on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from testsupport.databases import create_keys

from .ingest_helpers import GrpcServer, Printout, make_printouts

MAX_UPLOAD_MB = 2
MAX_PIXELS = 4_000_000
KEYS = {name: {"scopes": scopes, "tenant": tenant} for name, (scopes, tenant) in {
    "a_rw": ("submit,read", "clinic-a"), "a_read": ("read", "clinic-a"), "a_submit": ("submit", "clinic-a"),
    "b_rw": ("submit,read", "clinic-b"), "a_gone": ("submit,read", "clinic-a")}.items()}


@pytest.fixture(scope="session")
def printouts() -> dict[str, Printout]:
    return make_printouts()


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
