"""One page path: ``ocrpipe ocr`` (the real CLI process) and ``POST /v1/ocr`` on a real ``ocrpipe serve``
give the same Document (engine, text, line and word boxes) for the same generated page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from testsupport.images import text_page
from testsupport.server import Server, child_env

pytestmark = pytest.mark.integration

LINES = ["진료비 영수증 2026-03-14", "환자 번호 A-20931 김민지", "Total 48,500 KRW (VAT incl.)"]


def _essentials(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "engine": doc["engine"],
        "text": doc["text"],
        "pages": [{"size": (p["width"], p["height"]),
                   "lines": [(ln["text"], ln["box"], [(w["text"], w["box"]) for w in ln["words"]])
                             for ln in p["lines"]]}
                  for p in doc["pages"]],
    }


@pytest.mark.parametrize("batching", ["--batching", "--no-batching"])
def test_cli_and_service_give_the_same_document(tmp_path: Path, batching: str) -> None:
    page = tmp_path / "page.png"
    page.write_bytes(text_page(LINES))
    cli = subprocess.run([sys.executable, "-m", "ocrpipe", "ocr", str(page), "--format", "json"],
                         capture_output=True, text=True, timeout=300, env=child_env())
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)
    server = Server(tmp_path / "srv", batching).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            resp = client.post("/v1/ocr", files={"file": ("page.png", page.read_bytes(), "image/png")})
    finally:
        server.stop()
    assert resp.status_code == 200, resp.text
    from_service = resp.json()
    assert len(from_cli["pages"][0]["lines"]) >= len(LINES)
    assert all(ln["words"] for ln in from_cli["pages"][0]["lines"])
    assert _essentials(from_service) == _essentials(from_cli)
    for doc in (from_cli, from_service):
        assert doc["timings_ms"]["total"] >= doc["timings_ms"]["detect"] + doc["timings_ms"]["recognize"]
