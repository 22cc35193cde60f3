"""A full disk under the real server: uploads are refused with ``storage_full`` (never a 5xx or a dropped
connection), ``/readyz`` says unready, no temp file stays behind, and every acknowledged job still runs to
the end once space is back.

The data directory (uploads and the SQLite database) lives on a small tmpfs mounted for the test; where
mounting is not allowed (no root, no CAP_SYS_ADMIN) the test is skipped and says why.
"""

from __future__ import annotations

import io
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testsupport.server import Server, wait_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SIZE_MB = 24


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                    "the disk-full test needs root or CAP_SYS_ADMIN")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _grow(mount: Path, size_mb: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(mount)], check=True)


def _bulky_page(seed: int) -> bytes:
    """A small readable PNG made ~1 MB big by a text chunk of random letters."""
    from PIL import Image, ImageDraw, PngImagePlugin

    img = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(img).text((20, 40), f"page {seed}", fill="black")
    info = PngImagePlugin.PngInfo()
    rng = random.Random(seed)
    info.add_text("filler", "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1_000_000)))
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _metric(text: str, name: str) -> float:
    """The value of an unlabelled Prometheus sample."""
    return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


def test_disk_full_refuses_with_storage_full_and_loses_nothing(small_disk: Path, tmp_path: Path) -> None:
    data_dir = small_disk / "data"
    srv = Server(data_dir, "--job-workers", "1", env={"OCRPIPE_MIN_FREE_MB": "3"})
    srv.log_path = tmp_path / "server.log"  # the log must not compete for the full disk
    stray = data_dir / "uploads" / "ab" / "abcdef.tmp"  # what a crash in the middle of an upload leaves
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half an upload")
    srv.start()
    assert not stray.exists(), "start-up left a crashed upload's temp file"
    acknowledged: list[str] = []
    refusals: list[httpx.Response] = []
    try:
        with srv.client() as client:
            for i in range(3 * SIZE_MB):
                resp = client.post("/v1/jobs", files={"file": (f"p{i}.png", _bulky_page(i), "image/png")})
                assert resp.status_code in (202, 507), (resp.status_code, resp.text[:300])
                if resp.status_code == 202:
                    acknowledged.append(resp.json()["id"])
                else:
                    refusals.append(resp)
                    if len(refusals) >= 3:
                        break
            assert refusals, "the disk never filled up"
            for resp in refusals:
                assert resp.json()["error"]["code"] == "storage_full"
                assert int(resp.headers["Retry-After"]) >= 1
            ready = client.get("/readyz")
            assert ready.status_code == 507 and ready.json()["error"]["code"] == "storage_full"
            assert list((data_dir / "uploads").rglob("*.tmp")) == []
            # Audit entries that found no room are counted and logged as such (the requests still proceed).
            lost = _metric(client.get("/metrics").text, "ocrpipe_audit_write_failures")
            assert (lost > 0) == ("audit write failed" in srv.log()), lost
            _grow(small_disk, 4 * SIZE_MB)  # an operator frees space
            for job_id in acknowledged:
                assert wait_job(client, job_id, timeout=300)["status"] == "succeeded", job_id
            assert client.get("/readyz").status_code == 200
    finally:
        srv.stop()
    assert len(acknowledged) >= 5
    assert "Traceback" not in srv.log()
