"""``ocrpipe serve --ray`` on a real two-node Ray cluster (separate ``ray start`` processes): the ingress,
detector and recogniser deployments answer ``POST /v1/ocr`` with the Document ``ocrpipe serve`` answers for
the same page, run jobs from the PostgreSQL store, and keep the service's keys and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from testsupport.databases import create_keys, pg_available, pg_database
from testsupport.images import text_page
from testsupport.server import Server, wait_job

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(900)]

LINES = ["진료비 영수증 2026-03-14", "환자 번호 A-20931 김민지", "Total 48,500 KRW (VAT incl.)"]
SMALL = ["--ray-ingress-cpus", "0.2", "--ray-detector-cpus", "0.3", "--ray-recognizer-cpus", "0.3",
         "--max-upload-mb", "1"]


def essentials(doc: dict[str, Any]) -> dict[str, Any]:
    """Engine, models, text, and each line's and word's text and box (as tests/service/test_parity.py)."""
    return {
        "engine": doc["engine"], "models": doc["models"], "text": doc["text"],
        "pages": [{"size": (p["width"], p["height"]),
                   "lines": [(ln["text"], ln["box"], [(w["text"], w["box"]) for w in ln["words"]])
                             for ln in p["lines"]]}
                  for p in doc["pages"]],
    }


class RayServer(Server):
    stop_wait = 60.0  # the deployments are deleted on SIGTERM


def test_the_cluster_serves_the_same_api(cluster, tmp_path: Path) -> None:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    page = text_page(LINES)
    local = Server(tmp_path / "local").start()
    try:
        with local.client() as client:
            expected = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
            boxes = client.post("/v1/detection", files={"file": ("page.png", page, "image/png")})
    finally:
        local.stop()
    assert expected.status_code == 200, expected.text
    assert boxes.status_code == 200, boxes.text

    with pg_database() as url:
        key = create_keys(url, {"clinic": {"scopes": ["submit", "read"]}})["clinic"]
        server = RayServer(tmp_path / "ray", "--ray", cluster.address, "--database-url", url, *SMALL)
        server.start(timeout=420)
        try:
            with server.client(key) as client:
                resp = client.post("/v1/ocr", files={"file": ("page.png", page, "image/png")})
                assert resp.status_code == 200, resp.text
                assert essentials(resp.json()) == essentials(expected.json())
                assert resp.json()["timings_ms"]["detect"] > 0
                detection = client.post("/v1/detection", files={"file": ("page.png", page, "image/png")})
                assert detection.status_code == 200, detection.text
                assert detection.json()["pages"] == boxes.json()["pages"]

                job = client.post("/v1/jobs", files={"file": ("page.png", page, "image/png")})
                assert job.status_code == 202, job.text
                done = wait_job(client, job.json()["id"], timeout=300)
                assert done["status"] == "succeeded", done
                result = client.get(f"/v1/jobs/{done['id']}/result")
                assert essentials(result.json()) == essentials(expected.json())

                big = client.post("/v1/ocr", files={"file": ("big.png", b"\x89PNG" + b"0" * 2_000_000,
                                                             "image/png")})
                assert (big.status_code, big.json()["error"]["code"]) == (413, "file_too_large")
                bad = client.post("/v1/ocr", files={"file": ("bad.png", b"\x89PNG\r\n\x1a\nxx", "image/png")})
                assert (bad.status_code, bad.json()["error"]["code"]) == (400, "corrupt_image")
            anonymous = httpx.post(server.url + "/v1/ocr", files={"file": ("page.png", page, "image/png")},
                                   timeout=60)
            assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
        finally:
            server.stop()
        log = server.log()
        for deployment in ("ingress", "detector", "recognizer"):  # the three were deployed, and removed on stop
            assert "Replica(id=" in log and f"deployment='{deployment}', app='ocrpipe') is stopped" in log
