"""The scheduler and the batcher in the real server process: crops of several requests share batches, no
inference thread dies under mixed concurrent load, and a long PDF does not starve a one-page request."""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from testsupport.images import blank_pdf, text_line
from testsupport.server import Server

pytestmark = pytest.mark.integration


def metric(client: httpx.Client, name: str) -> float:
    """The value of an unlabelled metric line (or of the first labelled one) at ``/metrics``."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not found")


def log_events(server: Server) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def test_crops_of_several_requests_share_recognition_batches(tmp_path: Path, sample_png: bytes) -> None:
    # a long max wait and no width budget: a page's crops wait for the other pages' crops
    server = Server(tmp_path / "data", "--max-wait-ms", "1500", "--max-batch-width", "0", "--workers", "2").start()
    try:
        with server.client() as c:
            files = [("files", (f"p{i}.png", sample_png, "image/png")) for i in range(3)]
            resp = c.post("/v1/batch_ocr", files=files)
            assert resp.status_code == 200, resp.text
            assert all("한국어" in d["text"] for d in resp.json()["documents"])
            batches = metric(c, "ocrpipe_batch_callers_count")
            single = metric(c, 'ocrpipe_batch_callers_bucket{le="1.0"}')
            assert batches > single, (batches, single)  # some batch pooled the crops of two pages
    finally:
        server.stop()


def test_no_inference_thread_dies_under_concurrent_recognition_and_ocr(tmp_path: Path,
                                                                      sample_png: bytes) -> None:
    # the load that killed 3 of 4 batcher threads within 13 requests (issue 12)
    server = Server(tmp_path / "data", "--batch-threads", "4", "--workers", "2", "--max-wait-ms", "5").start()
    line = text_line("한국어 인식 2026")
    try:
        def recognition(_: int) -> int:
            with server.client() as c:
                return c.post("/v1/recognition", files=[("files", ("l.png", line, "image/png"))]).status_code

        def ocr(_: int) -> int:
            with server.client() as c:
                return c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")}).status_code

        with ThreadPoolExecutor(6) as pool:
            lines = [pool.submit(recognition, i) for i in range(40)]
            pages = [pool.submit(ocr, i) for i in range(4)]
            statuses = [f.result() for f in lines + pages]
        assert statuses == [200] * 44
        with server.client() as c:
            assert metric(c, "ocrpipe_inference_thread_restarts_total") == 0
            assert metric(c, "ocrpipe_inference_threads_alive") == 4
            assert c.get("/readyz").status_code == 200
        events = log_events(server)
        assert not [e for e in events if e.get("event") == "inference_thread_died"]
        assert "max() arg is an empty sequence" not in server.log()
    finally:
        server.stop()


def test_a_one_page_request_is_not_starved_by_a_50_page_pdf(tmp_path: Path, sample_png: bytes) -> None:
    server = Server(tmp_path / "data", "--workers", "2",
                    env={"OCRPIPE_MAX_SYNC_PAGES": "50", "OCRPIPE_SYNC_TIMEOUT_S": "600"}).start()
    pdf = blank_pdf(50, 827, 1170)  # A5-sized blank pages: about a second each to detect on this machine
    try:
        with httpx.Client(base_url=server.url, timeout=300) as c:
            def one_page() -> float:
                start = time.perf_counter()
                resp = c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")})
                assert resp.status_code == 200, resp.text
                return time.perf_counter() - start

            one_page()  # warm-up
            alone = statistics.median(one_page() for _ in range(3))
            with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=server.url, timeout=300) as c2:
                long = pool.submit(c2.post, "/v1/ocr", files={"file": ("blank.pdf", pdf, "application/pdf")})
                time.sleep(2.0)  # the PDF's pages are being worked on
                assert not long.done()
                loaded = one_page()
                assert not long.done(), "the PDF finished first: the test did not overlap the two"
                resp = long.result()
            assert resp.status_code == 200, resp.text
            assert len(resp.json()["pages"]) == 50
        assert loaded <= 3 * alone, f"1-page latency {loaded:.2f} s with the PDF in flight vs {alone:.2f} s alone"
    finally:
        server.stop()


def test_a_file_over_the_sync_page_cap_is_sent_to_jobs(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env={"OCRPIPE_MAX_SYNC_PAGES": "5"}).start()
    try:
        with server.client() as c:
            resp = c.post("/v1/ocr", files={"file": ("six.pdf", blank_pdf(6, 200, 200), "application/pdf")})
            assert resp.status_code == 413, resp.text
            err = resp.json()["error"]
            assert err["code"] == "too_many_pages_for_sync" and "/v1/jobs" in err["message"]
            job = c.post("/v1/jobs", files={"file": ("six.pdf", blank_pdf(6, 200, 200), "application/pdf")})
            assert job.status_code == 202
    finally:
        server.stop()
