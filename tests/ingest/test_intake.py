"""The upload checks and idempotency scoping are written once (ocrpipe.server.intake): the same upload gets
the same verdict and code from REST ``/v1/jobs``, REST ``/v1/ocr`` and gRPC ``Submit`` of one real server."""

from __future__ import annotations

import uuid

import grpc
import pytest
from testsupport.images import png

from ocrpipe.errors import STATUSES, ErrorCode
from ocrpipe.protocol import ingest_pb2 as pb

from .ingest_helpers import GrpcServer, error_code, query, rpc_error

pytestmark = pytest.mark.integration
Server = tuple[GrpcServer, dict[str, str]]

LIMIT = 2 * 1024 * 1024  # the folder's server: 2 MB and 4 Mpx
UPLOADS = {
    "empty": (b"", ErrorCode.EMPTY_INPUT),
    "text": (b"plain text, not an image", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    "truncated header": (png()[:30], ErrorCode.CORRUPT_IMAGE),
    "6 Mpx": (png(3000, 2000), ErrorCode.IMAGE_TOO_LARGE),
    "over 2 MB": (b"\x89PNG\r\n\x1a\n" + bytes(LIMIT), ErrorCode.FILE_TOO_LARGE),
}


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_rest_and_grpc_give_the_same_verdict(server: Server, case: str) -> None:
    srv, keys = server
    data, code = UPLOADS[case]
    before = query(srv.db_url, "SELECT count(*) FROM ocr_jobs")
    with srv.client(keys["a_rw"]) as client:
        for route in ("/v1/jobs", "/v1/ocr"):
            resp = client.post(route, files={"file": ("page.png", data, "image/png")}, timeout=60)
            assert (resp.status_code, resp.json()["error"]["code"]) == (STATUSES[code].http, code.value), \
                (route, resp.text)
    err = rpc_error(lambda: srv.stub(keys["a_rw"]).Submit(pb.SubmitRequest(image=data), timeout=30))
    assert (err.code(), error_code(err)) == (grpc.StatusCode[STATUSES[code].grpc], code.value), err.details()
    assert query(srv.db_url, "SELECT count(*) FROM ocr_jobs") == before


def test_a_good_upload_is_accepted_by_both(server: Server) -> None:
    srv, keys = server
    with srv.client(keys["a_rw"]) as client:
        resp = client.post("/v1/jobs", files={"file": ("page.png", png(), "image/png")}, timeout=60)
    assert resp.status_code == 202, resp.text
    reply = srv.stub(keys["a_rw"]).Submit(pb.SubmitRequest(image=png()), timeout=30)
    assert reply.created and len(reply.job_id) == 32


def test_idempotency_keys_are_scoped_per_tenant_and_transport(server: Server) -> None:
    srv, keys = server
    key = f"scan-{uuid.uuid4().hex}"
    image = png(80, 40)
    jobs = []
    for name in ("a_rw", "b_rw"):
        with srv.client(keys[name]) as client:
            first = client.post("/v1/jobs", files={"file": ("p.png", image, "image/png")},
                                headers={"Idempotency-Key": key}, timeout=60)
            again = client.post("/v1/jobs", files={"file": ("p.png", image, "image/png")},
                                headers={"Idempotency-Key": key}, timeout=60)
        assert (first.status_code, again.status_code) == (202, 200)
        assert first.json()["id"] == again.json()["id"]
        stub = srv.stub(keys[name])
        sub = stub.Submit(pb.SubmitRequest(image=image, idempotency_key=key), timeout=30)
        resub = stub.Submit(pb.SubmitRequest(image=image, idempotency_key=key), timeout=30)
        assert sub.created and not resub.created and sub.job_id == resub.job_id
        jobs += [first.json()["id"], sub.job_id]
    assert len(set(jobs)) == 4  # two tenants x two transports, never one answering another
