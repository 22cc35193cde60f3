"""Crash recovery of template jobs on the real server: after ``kill -9`` mid-job, the restarted server runs
every acknowledged printout to the end with its field rows written exactly once; on SIGTERM, open result
streams end with UNAVAILABLE ``shutting_down`` (so clients watch again) instead of a normal end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from ocrpipe.protocol import ingest_pb2 as pb

from .ingest_helpers import GrpcServer, Printout, error_code, query

pytestmark = pytest.mark.integration


def test_kill9_mid_job_and_sigterm_with_open_streams(tmp_path: Path, printouts: dict[str, Printout]) -> None:
    first = GrpcServer(tmp_path).start()
    try:
        stub = first.stub()
        jobs = {stub.Submit(pb.SubmitRequest(image=p.data), timeout=30).job_id: p for p in printouts.values()}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [stub.GetResult(pb.GetResultRequest(job_id=j), timeout=30).status for j in jobs]
            if "running" in states:
                break
            time.sleep(0.05)
        assert "running" in states, states
    finally:
        first.kill9()

    second = GrpcServer(tmp_path).start()  # same data dir and database
    try:
        stub = second.stub()
        done = list(stub.WatchResults(pb.WatchRequest(job_ids=list(jobs)), timeout=300))
        assert sorted(r.job_id for r in done) == sorted(jobs)
        for res in done:
            assert (res.status, res.mode, res.template) == ("succeeded", "template", jobs[res.job_id].layout)
            count = query(second.db_url, "SELECT count(*) FROM template_fields WHERE job_id = :j", j=res.job_id)
            assert count == [(len(jobs[res.job_id].truth["fields"]),)]  # exactly once
        assert max(r[0] for r in query(second.db_url, "SELECT attempts FROM ocr_jobs")) == 2  # the killed job

        stream = stub.WatchResults(pb.WatchRequest(since_unix_ms=0), timeout=120)
        assert next(stream).job_id in jobs  # the stream is being served (backlog first)
        ended: list[grpc.RpcError] = []

        def drain() -> None:
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as exc:
                ended.append(exc)

        reader = threading.Thread(target=drain)
        reader.start()
        time.sleep(0.5)
        second.stop()
        reader.join(30)
        assert ended and (ended[0].code(), error_code(ended[0])) == (grpc.StatusCode.UNAVAILABLE, "shutting_down")
    finally:
        second.stop()
