"""``?format=`` on /v1/ocr and /v1/jobs/{id}/result through the real server: text, hOCR, ALTO, a searchable
PDF whose extracted text is the recognised text, and 400 invalid_argument for an unknown format."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from testsupport.server import Server, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    srv = Server(tmp_path_factory.mktemp("formats"), "--max-wait-ms", "20")
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            yield c
    finally:
        srv.stop()


def _words(text: str) -> list[str]:
    return text.split()


def test_ocr_formats(client: httpx.Client, sample_png: bytes) -> None:
    files = {"file": ("sample.png", sample_png, "image/png")}
    doc = client.post("/v1/ocr", files=files).json()
    assert all([w["text"] for w in ln["words"]] == ln["text"].split() for p in doc["pages"] for ln in p["lines"])
    text = client.post("/v1/ocr", files=files, params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain") and _words(text.text) == _words(doc["text"])
    hocr = client.post("/v1/ocr", files=files, params={"format": "hocr"})
    assert hocr.headers["content-type"].startswith("text/html") and "ocrx_word" in hocr.text
    alto = client.post("/v1/ocr", files=files, params={"format": "alto"})
    assert alto.headers["content-type"].startswith("application/xml") and "<String" in alto.text
    pdf = client.post("/v1/ocr", files=files, params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    if shutil.which("pdftotext"):
        extracted = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True, check=True)
        assert _words(extracted.stdout.decode("utf-8")) == _words(doc["text"])
    else:
        import pypdf

        assert _words(pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()) == _words(doc["text"])


def test_unknown_format_is_a_400(client: httpx.Client, sample_png: bytes) -> None:
    resp = client.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")}, params={"format": "docx"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_argument"
    assert "alto" in resp.json()["error"]["message"]
    assert client.get("/v1/jobs/nope/result", params={"format": "docx"}).json()["error"]["code"] == \
        "invalid_argument"


def test_job_result_formats(client: httpx.Client, sample_png: bytes) -> None:
    job_id = client.post("/v1/jobs", files={"file": ("job.png", sample_png, "image/png")}).json()["id"]
    assert wait_job(client, job_id)["status"] == "succeeded"
    doc = client.get(f"/v1/jobs/{job_id}/result").json()
    alto = client.get(f"/v1/jobs/{job_id}/result", params={"format": "alto"})
    assert alto.status_code == 200 and alto.text.count("<String") == len(_words(doc["text"]))
    text = client.get(f"/v1/jobs/{job_id}/result", params={"format": "text"})
    assert _words(text.text) == _words(doc["text"])
    hocr = client.get(f"/v1/jobs/{job_id}/result", params={"format": "hocr"})
    assert hocr.headers["content-type"].startswith("text/html")
    assert hocr.text.count('class="ocrx_word"') == len(_words(doc["text"]))
    assert client.get(f"/v1/jobs/{job_id}/result", params={"format": "json"}).json() == doc
    pdf = client.get(f"/v1/jobs/{job_id}/result", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    import pypdf

    assert _words(pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()) == _words(doc["text"])
    bad = client.get(f"/v1/jobs/{job_id}/result", params={"format": "xml"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_argument"
