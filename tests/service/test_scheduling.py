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
        def ocr(_: int) -> httpx.Response:
            with server.client() as c:
                return c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")})

        with ThreadPoolExecutor(3) as pool:
            responses = list(pool.map(ocr, range(3)))
        assert all(r.status_code == 200 and "한국어" in r.json()["text"] for r in responses)
        with server.client() as c:
            batches = metric(c, "ocrpipe_batch_callers_count")
            single = metric(c, 'ocrpipe_batch_callers_bucket{le="1.0"}')
            assert batches > single, (batches, single)  # some batch pooled the crops of two requests
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


class Killed(BaseException):
    """Raised inside an inference thread from outside, as when the thread is killed mid-batch."""


def test_a_killed_inference_thread_is_replaced_and_its_items_fail_with_the_code(tmp_path: Path) -> None:
    """The app in this process (real HTTP on a socket, real engine) so that a batcher thread can be killed:
    an exception is injected into it while it holds a batch (``PyThreadState_SetAsyncExc``)."""
    import ctypes
    import threading

    import uvicorn
    from testsupport.server import free_port, wait_for

    from ocrpipe.server.app import create_app
    from ocrpipe.server.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path / "data", port=free_port(), grpc_port=0, batch_threads=1,
                               max_batch_size=4, max_batch_width=0, threads=1, job_workers=0,
                               template_workers=0, log_json=True)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    url = f"http://127.0.0.1:{settings.port}"
    lines = [("files", (f"l{i}.png", text_line(f"줄 {i} 한국어 인식 2026년 11월"), "image/png")) for i in range(32)]
    try:
        wait_for(lambda: _ready(url), 120, "the in-process server")
        batcher = app.state.svc.engine.batcher
        with httpx.Client(base_url=url, timeout=120) as c, ThreadPoolExecutor(1) as pool:
            for _ in range(3):  # the exception must land while the thread holds a batch
                pending = pool.submit(c.post, "/v1/recognition", files=lines)
                wait_for(lambda p=pending: batcher.busy_threads or p.done(), 60, "a batch in flight", every=0.0005)
                busy = batcher.busy_threads
                if busy and busy[0].ident is not None:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(busy[0].ident),
                                                               ctypes.py_object(Killed))
                resp = pending.result()
                if resp.status_code != 200:
                    break
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "inference_thread_died"
            wait_for(lambda: batcher.alive_threads == 1, 10, "the replacement thread")
            assert metric(c, "ocrpipe_inference_thread_restarts_total") >= 1
            assert c.get("/readyz").status_code == 200
            again = c.post("/v1/recognition", files=lines[:2])
            assert again.status_code == 200, again.text
    finally:
        server.should_exit = True
        runner.join(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
