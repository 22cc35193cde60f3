"""Prometheus metrics of the real gRPC server (``ocrpipe serve --grpc-port``), read from the same process's
``/metrics``: calls by method and status code — including calls the auth interceptor refuses — a latency
histogram by method, the open WatchResults streams, and no request content (job id, tenant, key name,
device, exam id, file name) anywhere in the exposition."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from testsupport.databases import create_keys
from testsupport.images import png

from ocrpipe.protocol import ingest_pb2 as pb

from .ingest_helpers import GrpcServer, rpc_error

pytestmark = pytest.mark.integration

INGEST = "ocrpipe.v1.Ingest"
KEYS = {"pc1-rw": {"scopes": "submit,read", "tenant": "clinic-metrics"},
        "pc1-read": {"scopes": "read", "tenant": "clinic-metrics"}}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GrpcServer, dict[str, str]]]:
    """A server of its own (plaintext on loopback, keys enforced), so the counters start at zero."""
    srv = GrpcServer(tmp_path_factory.mktemp("grpc-metrics"))
    keys = create_keys(srv.db_url, KEYS)
    srv.start()
    try:
        yield srv, keys
    finally:
        srv.stop()


def scrape(srv: GrpcServer) -> tuple[str, Samples]:
    text = httpx.get(srv.url + "/metrics", timeout=10).text
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_metric(srv: GrpcServer, name: str, expected: float, timeout: float = 15, **labels: str) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(srv)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            assert value(samples, name, **labels) == expected, (name, labels)
            return samples
        time.sleep(0.1)


def test_calls_refusals_latency_and_streams_are_counted_without_request_content(
        served: tuple[GrpcServer, dict[str, str]]) -> None:
    srv, keys = served
    _, before = scrape(srv)
    assert value(before, "ocrpipe_grpc_open_streams", method=f"{INGEST}/WatchResults") == 0  # exported at start
    assert value(before, "ocrpipe_grpc_calls_total", method=f"{INGEST}/Submit", code="OK") == 0

    stub = srv.stub(keys["pc1-rw"])
    job_id = stub.Submit(pb.SubmitRequest(image=png(), filename="HONG-Gildong-800101.png", device="ARK-530",
                                          exam_id="EXAM-4711", idempotency_key="idem-9f3a"), timeout=30).job_id
    assert rpc_error(lambda: srv.stub().Submit(pb.SubmitRequest(image=png()), timeout=30)).code() == \
        grpc.StatusCode.UNAUTHENTICATED  # refused by the auth interceptor: no key
    assert rpc_error(lambda: srv.stub(keys["pc1-read"]).Submit(pb.SubmitRequest(image=png()), timeout=30)).code() \
        == grpc.StatusCode.PERMISSION_DENIED  # refused by the auth interceptor: scope
    assert rpc_error(lambda: stub.GetResult(pb.GetResultRequest(job_id="0" * 32), timeout=30)).code() == \
        grpc.StatusCode.NOT_FOUND  # refused by the servicer

    stream = stub.WatchResults(pb.WatchRequest(since_unix_ms=int(time.time() * 1000) + 3_600_000))
    wait_metric(srv, "ocrpipe_grpc_open_streams", 1, method=f"{INGEST}/WatchResults")
    stream.cancel()
    wait_metric(srv, "ocrpipe_grpc_open_streams", 0, method=f"{INGEST}/WatchResults")

    text, after = scrape(srv)
    calls = {(dict(labels)["method"], dict(labels)["code"]): v for (name, labels), v in after.items()
             if name == "ocrpipe_grpc_calls_total"}
    assert calls == {(f"{INGEST}/Submit", "OK"): 1, (f"{INGEST}/Submit", "UNAUTHENTICATED"): 1,
                     (f"{INGEST}/Submit", "PERMISSION_DENIED"): 1, (f"{INGEST}/GetResult", "NOT_FOUND"): 1,
                     (f"{INGEST}/WatchResults", "CANCELLED"): 1}
    assert value(after, "ocrpipe_grpc_call_duration_seconds_count", method=f"{INGEST}/Submit") == 3
    assert value(after, "ocrpipe_grpc_call_duration_seconds_count", method=f"{INGEST}/WatchResults") == 1
    assert value(after, "ocrpipe_grpc_call_duration_seconds_bucket", method=f"{INGEST}/Submit", le="+Inf") == 3

    grpc_labels = {k for (name, labels) in after if name.startswith("ocrpipe_grpc_") for k, _ in labels}
    assert grpc_labels == {"method", "code", "le"}  # le: the histogram's buckets
    for secret in (job_id, "clinic-metrics", "pc1-rw", "pc1-read", "HONG", "800101", "ARK-530", "EXAM-4711",
                   "idem-9f3a", keys["pc1-rw"]):
        assert secret not in text, secret


def test_unknown_methods_add_no_series(served: tuple[GrpcServer, dict[str, str]]) -> None:
    """A method name comes from the caller: calls to ones the server lacks must not grow the label set."""
    srv, keys = served
    channel = srv.channel(keys["pc1-rw"])
    call = channel.unary_unary("/ocrpipe.v1.Ingest/DropTables-patient-4711")
    assert rpc_error(lambda: call(b"", timeout=30)).code() == grpc.StatusCode.UNIMPLEMENTED
    text, _ = scrape(srv)
    labels = re.findall(r"\{[^}]*\}", text)  # label sets only: a sample value may contain the digits 4711
    assert "DropTables" not in text and not any("4711" in label for label in labels)

