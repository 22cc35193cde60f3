"""The real server on PostgreSQL (skipped when the local server is not reachable): a printout submitted
over gRPC ends as field rows in PostgreSQL, written with the job's completion, and DELETE removes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testsupport.databases import pg_database

from ocrpipe.protocol import ingest_pb2 as pb

from .ingest_helpers import GrpcServer, Printout, query, wait_result

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    with pg_database() as url:
        data_dir: Path = tmp_path_factory.mktemp("grpc-pg")
        srv = GrpcServer(data_dir, "--database-url", url).start()  # loopback, no keys: open on purpose
        try:
            yield srv
        finally:
            srv.stop()


def test_rows_are_written_to_postgres(pg_server: GrpcServer, printouts: dict[str, Printout]) -> None:
    stub = pg_server.stub()
    p = printouts["ark_v2"]
    job_id = stub.Submit(pb.SubmitRequest(image=p.data, exam_id="PG-1"), timeout=30).job_id
    res = wait_result(stub, job_id)
    assert (res.status, res.mode, res.template) == ("succeeded", "template", "ark_v2"), res.error_message
    rows = query(pg_server.db_url, "SELECT field, value, valid, exam_id, template FROM template_fields "
                                   "WHERE job_id = :j ORDER BY id", j=job_id)
    assert [(r[0], r[1] or "", r[2]) for r in rows] == [(f.name, f.value, f.valid) for f in res.fields]
    assert {(r[3], r[4]) for r in rows} == {("PG-1", "ark_v2")} and len(rows) == len(p.truth["fields"])
    finished, kind = query(pg_server.db_url, "SELECT finished_at, kind FROM ocr_jobs WHERE id = :j", j=job_id)[0]
    assert finished is not None and kind == "template"
    assert httpx.delete(f"{pg_server.url}/v1/jobs/{job_id}", timeout=30).status_code == 200
    assert query(pg_server.db_url, "SELECT count(*) FROM template_fields WHERE job_id = :j", j=job_id) == [(0,)]
