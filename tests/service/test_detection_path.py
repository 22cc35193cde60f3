"""``/v1/detection`` and ``/v1/recognition`` on a real ``ocrpipe serve``: detection runs through the page
scheduler on the engine's page path (same boxes as the engine, pages taken one at a time and interleaved
with other requests, the sync page cap and time budget), and line recognition keeps to the same limits."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from testsupport.images import blank_pdf, text_line, text_page
from testsupport.server import Server

pytestmark = pytest.mark.integration

LINES = ["진료비 영수증 2026-03-14", "환자 번호 A-20931 김민지", "Total 48,500 KRW (VAT incl.)"]


def pdf_of(pngs: list[bytes], dpi: int = 200) -> bytes:
    """A PDF with one page per image, each rendering back to the image's pixel size at ``dpi``."""
    from PIL import Image

    frames = [Image.open(io.BytesIO(p)).convert("RGB") for p in pngs]
    buf = io.BytesIO()
    frames[0].save(buf, "PDF", save_all=True, append_images=frames[1:], resolution=float(dpi))
    return buf.getvalue()


def detect_count(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('ocrpipe_stage_duration_seconds_count{stage="detect"}'):
            return float(line.split()[-1])
    return 0.0


def engine_detection(pdf: bytes) -> list[dict[str, Any]]:
    """What the engine's page path finds on every page of ``pdf``, in ``/v1/detection``'s shape."""
    from ocrpipe.engine.pipeline import Pipeline
    from ocrpipe.server.scheduling.engine import detection_json
    from ocrpipe.settings import EngineSettings, pipeline_config

    pipeline = Pipeline(pipeline_config(EngineSettings(threads=1)))  # the service's defaults
    out = []
    with pipeline.open(pdf, filename="doc.pdf") as pages:
        for i in range(len(pages)):
            image = pages.render(i)
            prepared, det = pipeline.find_text(image)
            out.append(detection_json(image, i, prepared.to_original(det.quads), det.scores))
    return out


def test_detection_equals_the_engine_and_is_interleaved_with_other_requests(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", "--workers", "2",
                    env={"OCRPIPE_MAX_SYNC_PAGES": "30", "OCRPIPE_SYNC_TIMEOUT_S": "600"}).start()
    doc = pdf_of([text_page(LINES), text_page(LINES[::-1])])
    long = blank_pdf(30, 827, 1170)  # A5-sized blank pages: about a second each to detect here
    try:
        with httpx.Client(base_url=server.url, timeout=600) as c:
            resp = c.post("/v1/detection", files={"file": ("doc.pdf", doc, "application/pdf")})
            assert resp.status_code == 200, resp.text
            pages = resp.json()["pages"]
            assert len(pages) == 2 and all(len(p["boxes"]) >= len(LINES) for p in pages)
            assert pages == engine_detection(doc)  # the engine's page path, box for box

            with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=server.url, timeout=600) as c2:
                pending = pool.submit(c2.post, "/v1/detection",
                                      files={"file": ("long.pdf", long, "application/pdf")})
                deadline = time.monotonic() + 120
                while detect_count(c) < 4 and time.monotonic() < deadline:  # the long PDF's pages are under way
                    time.sleep(0.2)
                short = c.post("/v1/detection", files={"file": ("doc.pdf", doc, "application/pdf")})
                assert short.status_code == 200 and short.json()["pages"] == pages
                # taken one page at a time, round-robin: the 2-page request did not wait for the 30 pages
                assert not pending.done(), "the 30-page detection finished first: its pages were not interleaved"
                resp = pending.result()
            assert resp.status_code == 200, resp.text
            assert [p["index"] for p in resp.json()["pages"]] == list(range(30))
            assert all(p["boxes"] == [] and abs(p["width"] - 827) <= 1 for p in resp.json()["pages"])
    finally:
        server.stop()


def test_detection_and_recognition_keep_the_sync_page_cap_and_time_budget(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", "--workers", "2",
                    env={"OCRPIPE_MAX_SYNC_PAGES": "20", "OCRPIPE_SYNC_TIMEOUT_S": "3"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=300) as c:
            for route, field in (("/v1/detection", "file"), ("/v1/recognition", "files")):
                over = c.post(route, files={field: ("21.pdf", blank_pdf(21, 200, 200), "application/pdf")})
                assert over.status_code == 413, (route, over.text)
                err = over.json()["error"]
                assert err["code"] == "too_many_pages_for_sync" and "/v1/jobs" in err["message"], route

            line = text_line("한국어 인식 2026")
            ok = c.post("/v1/recognition", files=[("files", ("l.png", line, "image/png"))])
            assert ok.status_code == 200 and "2026" in ok.json()["results"][0]["text"]

            before = detect_count(c)
            slow = c.post("/v1/detection", files={"file": ("a4.pdf", blank_pdf(20), "application/pdf")})
            assert slow.status_code == 504, slow.text
            assert slow.json()["error"]["code"] == "deadline_exceeded"
            time.sleep(3.0)  # pages started before the deadline finish; the others never start
            assert detect_count(c) - before < 20
    finally:
        server.stop()


def test_a_long_detection_renders_its_pages_one_at_a_time_within_the_memory_budget(tmp_path: Path) -> None:
    """40 A4 pages (465 MB once rendered) sent to ``/v1/detection`` with both page threads allowed to the
    request: pages are rendered only when a thread takes them, and the memory budget (one A4 detection's
    working memory) keeps a second A4 page from being detected beside the first, so the server grows by
    little more than the pages in flight over what one A4 page needed; the time budget stops the rest."""
    server = Server(tmp_path / "data", "--workers", "2", "--request-threads", "2",
                    env={"OCRPIPE_MAX_SYNC_PAGES": "40", "OCRPIPE_SYNC_TIMEOUT_S": "10"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=600) as c:
            c.post("/v1/detection", files={"file": ("one.pdf", blank_pdf(1), "application/pdf")}).raise_for_status()
            warm = rss_mb(server)
            peak = warm
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(c.post, "/v1/detection",
                                      files={"file": ("forty.pdf", blank_pdf(40), "application/pdf")})
                while not pending.done():
                    peak = max(peak, rss_mb(server))
                    time.sleep(0.05)
            resp = pending.result()
            assert resp.status_code == 504 and resp.json()["error"]["code"] == "deadline_exceeded", resp.text
        # rendering all 40 pages first would add 465 MB; a second A4 detection at once ~750 MB
        assert peak - warm < 300, (warm, peak)
    finally:
        server.stop()


def rss_mb(server: Server) -> float:
    """The server process's resident set size in MiB."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")
