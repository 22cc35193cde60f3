"""Acknowledged jobs survive ``kill -9`` of the server (SQLite and PostgreSQL), and failures reach the
webhook as rate-limited alerts plus a summary."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from testsupport.images import png
from testsupport.server import Server, wait_job

from .conftest import WebhookReceiver

pytestmark = pytest.mark.integration


def multipage_pdf(image: bytes, pages: int) -> bytes:
    """A PDF whose every page is the sample image (about one second of OCR per page)."""
    from PIL import Image

    img = Image.open(io.BytesIO(image)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PDF", save_all=True, append_images=[img] * (pages - 1), resolution=150)
    return buf.getvalue()


def poll(client: httpx.Client, job_id: str, until: set[str]) -> dict:
    """Often (a six-page job is "running" for a few seconds only) and long (the machine is shared)."""
    return wait_job(client, job_id, timeout=180, until=until, every=0.1)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_job_survives_sigkill_mid_run(backend: str, tmp_path: Path, sample_png: bytes,
                                      request: pytest.FixtureRequest) -> None:
    args = [] if backend == "sqlite" else ["--database-url", request.getfixturevalue("pg_url")]
    server = Server(tmp_path / "data", *args).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            resp = client.post("/v1/jobs", files={"file": ("doc.pdf", multipage_pdf(sample_png, 6),
                                                            "application/pdf")})
            assert resp.status_code == 202
            job_id = resp.json()["id"]
            queued = [client.post("/v1/jobs", files={"file": (f"q{i}.png", sample_png, "image/png")})
                      .json()["id"] for i in range(2)]
            running = poll(client, job_id, {"running", "succeeded", "failed"})
            assert running["status"] == "running", running
            time.sleep(0.5)
            server.kill9()  # mid-job: no chance to clean up
    finally:
        server.stop()

    restarted = Server(tmp_path / "data", *args)
    restarted.port = server.port
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            done = poll(client, job_id, {"succeeded", "failed"})
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 2 and done["pages"] == 6
            result = client.get(f"/v1/jobs/{job_id}/result").json()
            assert len(result["pages"]) == 6 and all("한국어" in p for p in result["text"].split("\f"))
            for qid in queued:  # jobs that never started run too
                assert poll(client, qid, {"succeeded", "failed"})["status"] == "succeeded"
    finally:
        restarted.stop()


def test_failed_jobs_alert_the_webhook_with_rate_limit_and_summary(tmp_path: Path, pg_url: str,
                                                                   webhook: WebhookReceiver) -> None:
    """Runs on PostgreSQL: failure alerts (one per class), then a periodic summary."""
    server = Server(tmp_path / "data", "--database-url", pg_url, "--webhook-url", webhook.url,
                    env={"OCRPIPE_SUMMARY_INTERVAL_S": "4", "OCRPIPE_ALERT_INTERVAL_S": "3600"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/readyz").json()["database"] == "postgresql"
            bad = png(300, 200, 0)[:100]
            ids = [client.post("/v1/jobs", files={"file": (f"bad{i}.png", bad, "image/png")}).json()["id"]
                   for i in range(3)]
            for job_id in ids:
                assert poll(client, job_id, {"succeeded", "failed"})["status"] == "failed"
            deadline = time.monotonic() + 30
            summaries: list[str] = []
            while time.monotonic() < deadline and not any("3 jobs" in s for s in summaries):
                messages = webhook.wait_for(len(webhook.messages) + 1, timeout=5)
                summaries = [m["text"] for m in messages if "summary" in m["text"]]
            alerts = [m["text"] for m in webhook.messages if "failure" in m["text"]]
            assert len(alerts) == 1 and "decode/corrupt_image" in alerts[0]  # 3 failures, 1 alert
            final = [s for s in summaries if "3 jobs" in s]
            assert final and "success rate 0.0%" in final[0] and "3 failed" in final[0]
            metrics = client.get("/metrics").text
            assert 'ocrpipe_jobs_total{outcome="failed"} 3.0' in metrics
    finally:
        server.stop()


@pytest.mark.postgres
def test_two_server_processes_share_the_queue_without_double_claims(tmp_path: Path, pg_url: str,
                                                                     sample_png: bytes) -> None:
    """Two processes on one PostgreSQL database (and one data dir): every job runs exactly once."""
    a = Server(tmp_path / "shared", "--database-url", pg_url).start()
    b = Server(tmp_path / "shared", "--database-url", pg_url).start()
    try:
        with httpx.Client(base_url=a.url, timeout=60) as ca, httpx.Client(base_url=b.url, timeout=60) as cb:
            ids = [(ca if i % 2 else cb).post("/v1/jobs", files={"file": (f"{i}.png", sample_png, "image/png")})
                   .json()["id"] for i in range(6)]
            for job_id in ids:
                job = poll(ca, job_id, {"succeeded", "failed"})
                assert job["status"] == "succeeded" and job["attempts"] == 1, job
    finally:
        a.stop()
        b.stop()


def test_sigterm_mid_job_requeues_it_and_the_next_start_finishes_it(tmp_path: Path, sample_png: bytes) -> None:
    env = {"OCRPIPE_SHUTDOWN_GRACE_S": "0.2"}
    server = Server(tmp_path / "data", env=env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            job_id = client.post("/v1/jobs", files={"file": ("doc.pdf", multipage_pdf(sample_png, 6),
                                                               "application/pdf")}).json()["id"]
            assert poll(client, job_id, {"running", "succeeded", "failed"})["status"] == "running"
        start = time.monotonic()
        server.stop()  # SIGTERM: graceful
        assert server.proc is not None and server.proc.returncode in (0, -15)  # uvicorn re-raises SIGTERM
        assert time.monotonic() - start < 20
    finally:
        server.stop()
    from ocrpipe.server.storage.db import get_engine
    from ocrpipe.server.storage.jobs import JobStore

    engine = get_engine(f"sqlite:///{tmp_path / 'data' / 'ocrpipe.db'}")
    view = JobStore(engine, tmp_path / "data" / "uploads").get(job_id)
    engine.dispose()
    assert view is not None and view.status == "queued" and view.attempts == 0  # given back, not failed
    restarted = Server(tmp_path / "data", env=env).start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as client:
            done = poll(client, job_id, {"succeeded", "failed"})
            assert done["status"] == "succeeded" and done["pages"] == 6
    finally:
        restarted.stop()


def test_results_are_swept_after_the_retention(tmp_path: Path, sample_png: bytes) -> None:
    env = {"OCRPIPE_RETENTION_HOURS": str(1.5 / 3600), "OCRPIPE_SWEEP_INTERVAL_S": "0.5"}
    server = Server(tmp_path / "data", env=env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            job_id = client.post("/v1/jobs", files={"file": ("a.png", sample_png, "image/png")}).json()["id"]
            assert poll(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
            uploads = list((tmp_path / "data" / "uploads").rglob("*.bin"))
            assert len(uploads) == 1
            deadline = time.monotonic() + 20
            while client.get(f"/v1/jobs/{job_id}").status_code != 404 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert client.get(f"/v1/jobs/{job_id}/result").json()["error"]["code"] == "job_not_found"
            assert not uploads[0].exists()
    finally:
        server.stop()
