"""Back-pressure over HTTP: too many concurrent requests get 429, a full recognition queue 503, both
with Retry-After and a JSON error code, and the server recovers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from testsupport.server import Server

pytestmark = pytest.mark.integration


def test_overload_is_refused_with_retry_after(tmp_path: Path, sample_png: bytes) -> None:
    env = {"OCRPIPE_MAX_INFLIGHT": "3", "OCRPIPE_MAX_QUEUE": "4", "OCRPIPE_ADMISSION_TIMEOUT_S": "0"}
    server = Server(tmp_path / "data", "--max-batch-size", "4", "--workers", "2", env=env).start()
    try:
        def post(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                return c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(post, range(8)))
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 429, 503}, statuses
        assert 200 in statuses and 429 in statuses, statuses  # 8 at once, 3 admitted
        for r in responses:
            if r.status_code != 200:
                assert int(r.headers["retry-after"]) >= 1
                code = r.json()["error"]["code"]
                assert code == ("too_many_requests" if r.status_code == 429 else "overloaded")
        with httpx.Client(base_url=server.url, timeout=120) as c:  # recovers once the burst is over
            assert c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")}).status_code == 200
            metrics = c.get("/metrics").text
            assert 'ocrpipe_rejected_total{reason="inflight"}' in metrics
    finally:
        server.stop()
