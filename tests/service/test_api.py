"""The real server process over HTTP (SQLite): every endpoint, and bad input that gets a 4xx JSON error
with a code while the server keeps serving other clients."""

from __future__ import annotations

import io
import json
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from testsupport.images import png
from testsupport.server import Server, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("api"), "--max-wait-ms", "20",
                 env={"OCRPIPE_MAX_UPLOAD_MB": "2", "OCRPIPE_MAX_PAGES": "20", "OCRPIPE_MAX_FILES": "8"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


# ---- happy paths -------------------------------------------------------------------------------------


def test_ocr_returns_the_document_json(client: httpx.Client, sample_png: bytes) -> None:
    resp = client.post("/v1/ocr", files={"file": ("sample.png", sample_png, "image/png")})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert set(doc) >= {"engine", "pages", "text", "timings_ms", "models"}
    page = doc["pages"][0]
    assert (page["width"], page["height"]) == (1240, 479)
    assert len(page["lines"]) >= 4
    assert "한국어" in doc["text"] and "2026" in doc["text"]
    assert all(len(line["box"]) == 4 for line in page["lines"])
    assert {"decode", "detect", "recognize", "total"} <= set(doc["timings_ms"])
    assert resp.headers["x-request-id"]


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not found")


def test_batch_ocr_sends_the_crops_of_all_files_through_the_batcher(client: httpx.Client,
                                                                    sample_png: bytes) -> None:
    crops_before = metric(client, "ocrpipe_batch_size_sum")
    files = [("files", (f"p{i}.png", sample_png, "image/png")) for i in range(3)]
    resp = client.post("/v1/batch_ocr", files=files)
    assert resp.status_code == 200, resp.text
    docs = resp.json()["documents"]
    assert [d["filename"] for d in docs] == ["p0.png", "p1.png", "p2.png"]
    assert all("한국어" in d["text"] for d in docs)
    lines = sum(len(d["pages"][0]["lines"]) for d in docs)
    assert metric(client, "ocrpipe_batch_size_sum") - crops_before >= lines


def test_detection_and_recognition(client: httpx.Client, sample_png: bytes) -> None:
    det = client.post("/v1/detection", files={"file": ("s.png", sample_png, "image/png")})
    assert det.status_code == 200, det.text
    boxes = det.json()["pages"][0]["boxes"]
    assert len(boxes) >= 4 and all(0 < b["score"] <= 1 for b in boxes)
    # cut two line images out of the page with the detected boxes and recognise them
    from PIL import Image

    page = Image.open(io.BytesIO(sample_png)).convert("RGB")
    crops = []
    for b in sorted(boxes, key=lambda b: b["box"][0][1])[:2]:
        xs = [p[0] for p in b["box"]]
        ys = [p[1] for p in b["box"]]
        buf = io.BytesIO()
        page.crop((int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1)).save(buf, "PNG")
        crops.append(("files", (f"line{len(crops)}.png", buf.getvalue(), "image/png")))
    rec = client.post("/v1/recognition", files=crops)
    assert rec.status_code == 200, rec.text
    results = rec.json()["results"]
    assert len(results) == 2
    assert "한국어" in results[0]["text"]
    assert "2026" in results[1]["text"]


def test_job_lifecycle_idempotency_and_listing(client: httpx.Client, sample_png: bytes) -> None:
    files = {"file": ("job.png", sample_png, "image/png")}
    created = client.post("/v1/jobs", files=files, headers={"Idempotency-Key": "same-upload-1"})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.headers["location"] == f"/v1/jobs/{job_id}"
    replay = client.post("/v1/jobs", files=files, headers={"Idempotency-Key": "same-upload-1"})
    assert replay.status_code == 200 and replay.json()["id"] == job_id
    other = client.post("/v1/jobs", files={"file": ("x.png", png(), "image/png")},
                        headers={"Idempotency-Key": "same-upload-1"})
    assert_error(other, 409, "idempotency_conflict")

    job = wait_job(client, job_id)
    assert job["status"] == "succeeded" and job["pages"] == 1 and job["attempts"] == 1
    result = client.get(f"/v1/jobs/{job_id}/result").json()
    assert "한국어" in result["text"]
    page_img = client.get(f"/v1/jobs/{job_id}/pages/0")
    assert page_img.status_code == 200 and page_img.headers["content-type"] == "image/jpeg"
    listed = client.get("/v1/jobs", params={"status": "succeeded"}).json()["jobs"]
    assert job_id in [j["id"] for j in listed]
    assert client.get("/v1/jobs", params={"status": "queued", "since": "2999-01-01T00:00:00Z"}).json() == {
        "jobs": []}
    assert_error(client.get("/v1/jobs", params={"status": "bogus"}), 400, "invalid_argument")


def test_failed_job_reports_stage_and_code(client: httpx.Client) -> None:
    # The header is intact (the upload is accepted), the compressed pixel data is not (decoding fails).
    data = bytearray(png(300, 200, 0))
    at = data.index(b"IDAT") + 8
    data[at:at + 16] = b"\xff" * 16
    resp = client.post("/v1/jobs", files={"file": ("cut.png", bytes(data), "image/png")})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    job = wait_job(client, job_id)
    assert job["status"] == "failed"
    assert job["error"]["stage"] == "decode" and job["error"]["code"] == "corrupt_image"
    assert_error(client.get(f"/v1/jobs/{job_id}/result"), 422, "corrupt_image")


def test_unknown_job_and_route(client: httpx.Client) -> None:
    assert_error(client.get("/v1/jobs/nope"), 404, "job_not_found")
    assert_error(client.get("/v1/jobs/nope/result"), 404, "job_not_found")
    assert_error(client.get("/v2/nothing"), 404, "not_found")


def test_system_endpoints_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["database"] == "sqlite" and ready["models"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    for name in ("ocrpipe_http_requests_total", "ocrpipe_stage_duration_seconds_bucket", "ocrpipe_batch_size",
                 "ocrpipe_batcher_queue_depth", "ocrpipe_jobs_total"):
        assert name in metrics.text
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ocr", "/v1/batch_ocr", "/v1/detection", "/v1/recognition", "/v1/jobs",
                 "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200
    home = client.get("/")
    assert home.status_code == 200 and "<canvas" in home.text
    assert client.get("/static/app.js").status_code == 200


# ---- bad input ---------------------------------------------------------------------------------------


def decompression_bomb() -> bytes:
    """A 10,000 x 10,000 PNG (100 Mpx, 2x the pixel limit) that compresses to ~100 kB."""
    width = height = 10_000
    raw = zlib.compress(b"\x00" * ((width + 1) * height), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def thousand_page_pdf() -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(1000):
        pdf.new_page(200, 200)
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


Send = Callable[[httpx.Client], httpx.Response]


def send_file(path: str, name: str, data: bytes | Callable[[], bytes], ctype: str = "image/png",
              field: str = "file") -> Send:
    """A request ``client -> response`` posting one multipart file (``data`` may be built lazily)."""
    return lambda c: c.post(path, files={field: (name, data() if callable(data) else data, ctype)})


def _many_files(c: httpx.Client) -> httpx.Response:
    files = [("files", (f"{i}.png", png(), "image/png")) for i in range(9)]
    return c.post("/v1/batch_ocr", files=files)


def _raw_png_body(c: httpx.Client) -> httpx.Response:
    return c.post("/v1/ocr", content=png(), headers={"content-type": "image/png"})


BAD_INPUTS = {
    "no file": (send_file("/v1/ocr", "a.png", png(), field="other"), 400, "invalid_argument"),
    "zero bytes": (send_file("/v1/ocr", "a.png", b""), 400, "empty_input"),
    "not an image": (send_file("/v1/ocr", "a.png", b"hello, not an image" * 10),
                     415, "unsupported_media_type"),
    "truncated image": (send_file("/v1/ocr", "a.png", png(400, 300, 0)[:150]), 400, "corrupt_image"),
    "decompression bomb": (send_file("/v1/ocr", "bomb.png", decompression_bomb), 413, "image_too_large"),
    "1000-page pdf": (send_file("/v1/ocr", "big.pdf", thousand_page_pdf, "application/pdf"),
                      413, "too_many_pages"),
    "oversize body": (send_file("/v1/ocr", "big.png", b"\x89PNG" + b"0" * 3_000_000), 413, "file_too_large"),
    "wrong content type": (_raw_png_body, 415, "unsupported_media_type"),
    "json body": (lambda c: c.post("/v1/jobs", json={"file": "x"}), 415, "unsupported_media_type"),
    "job not an image": (send_file("/v1/jobs", "a.txt", b"plain text", "text/plain"), 415,
                         "unsupported_media_type"),
    "job zero bytes": (send_file("/v1/jobs", "a.png", b""), 400, "empty_input"),
    "too many files": (_many_files, 413, "too_many_pages"),
}


def test_oversize_chunked_body_without_length_is_refused(client: httpx.Client) -> None:
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent with chunked transfer encoding
        yield head
        for _ in range(40):
            yield b"0" * 100_000

    resp = client.post("/v1/ocr", content=chunks(),
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(resp, 413, "file_too_large")


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gets_a_json_error_with_a_code(client: httpx.Client, case: str) -> None:
    send, status, code = BAD_INPUTS[case]
    assert_error(send(client), status, code)


def test_server_keeps_serving_good_clients_during_bad_input(server: Server, sample_png: bytes) -> None:
    def good() -> str:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            r = c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")})
            assert r.status_code == 200, r.text
            return r.json()["text"]

    def bad(case: str) -> int:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            return BAD_INPUTS[case][0](c).status_code

    with ThreadPoolExecutor(8) as pool:
        good_futures = [pool.submit(good) for _ in range(2)]
        bad_futures = {case: pool.submit(bad, case) for case in BAD_INPUTS}
        assert all("한국어" in f.result() for f in good_futures)
        expected = {case: spec[1] for case, spec in BAD_INPUTS.items()}
        assert {case: f.result() for case, f in bad_futures.items()} == expected
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_logs_are_json_with_ids_and_never_contain_recognised_text(server: Server, client: httpx.Client,
                                                                  sample_png: bytes) -> None:
    client.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")},
                headers={"X-Request-ID": "req-42"})
    job_id = client.post("/v1/jobs", files={"file": ("s.png", sample_png, "image/png")}).json()["id"]
    wait_job(client, job_id)
    time.sleep(0.3)
    log_text = Path(server.log_path).read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert any(rec.get("request_id") == "req-42" and rec.get("route") == "/v1/ocr" for rec in lines)
    assert any(rec.get("job_id") == job_id and rec["msg"] == "job succeeded" for rec in lines)
    text = Path(server.log_path).read_text()
    assert "한국어" not in text and "신청인" not in text


def test_batch_ocr_reports_bad_files_per_file(client: httpx.Client, sample_png: bytes) -> None:
    files = [("files", ("good.png", sample_png, "image/png")), ("files", ("empty.png", b"", "image/png")),
             ("files", ("text.png", b"not an image at all", "image/png"))]
    resp = client.post("/v1/batch_ocr", files=files)
    assert resp.status_code == 200, resp.text
    good, empty, text = resp.json()["documents"]
    assert good["filename"] == "good.png" and "한국어" in good["text"]
    assert empty["filename"] == "empty.png" and empty["error"]["code"] == "empty_input"
    assert text["error"]["code"] == "unsupported_media_type"
