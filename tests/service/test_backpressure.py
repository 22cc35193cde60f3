"""Back-pressure over HTTP: too many concurrent requests get 429, a full recognition queue 503, both
with Retry-After and a JSON error code, and the server recovers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from testsupport.images import text_line
from testsupport.server import Server

pytestmark = pytest.mark.integration


def assert_refusal(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == code


def test_overload_is_refused_with_retry_after(tmp_path: Path, sample_png: bytes) -> None:
    env = {"OCRPIPE_MAX_INFLIGHT": "3", "OCRPIPE_MAX_QUEUE": "4", "OCRPIPE_ADMISSION_TIMEOUT_S": "0"}
    server = Server(tmp_path / "data", "--max-batch-size", "4", "--workers", "2", "--batch-threads", "1",
                    env=env).start()
    lines = [("files", (f"l{i}.png", text_line(f"줄 {i} 한국어 인식"), "image/png")) for i in range(8)]
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
            if r.status_code == 429:
                assert_refusal(r, 429, "too_many_requests")

        # Two line requests of 8 crops each on a queue of 4 (admission timeout 0): one is admitted while the
        # queue is empty, the other finds it non-empty and must get 503. Repeated until seen, bounded.
        def recognise(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                return c.post("/v1/recognition", files=lines)

        overloaded: list[httpx.Response] = []
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(2) as pool:
            while not overloaded and time.monotonic() < deadline:
                rounds = list(pool.map(recognise, range(2)))
                assert {r.status_code for r in rounds} <= {200, 503}, [r.text for r in rounds]
                overloaded = [r for r in rounds if r.status_code == 503]
        assert overloaded, "a full recognition queue never answered 503"
        assert_refusal(overloaded[0], 503, "overloaded")
        with httpx.Client(base_url=server.url, timeout=120) as c:  # recovers once the burst is over
            assert c.post("/v1/ocr", files={"file": ("s.png", sample_png, "image/png")}).status_code == 200
            metrics = c.get("/metrics").text
            assert 'ocrpipe_rejected_total{reason="inflight"}' in metrics
    finally:
        server.stop()
