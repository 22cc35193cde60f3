"""The shared intake checks on their own: verdicts for each kind of bad upload, and the queued-jobs gate on
a real job store (SQLite)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from testsupport.hostile import pdf_pages

from ocrpipe.engine.decode import Limits
from ocrpipe.errors import ErrorCode, InputError
from ocrpipe.server.errors import ServiceError
from ocrpipe.server.intake import QueueGate, check_upload
from ocrpipe.server.storage.db import get_engine, migrate
from ocrpipe.server.storage.jobs import JobStore

LIMITS = Limits(max_bytes=4096, max_pixels=1_000_000, max_pages=3, max_side=3000)


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "code"), [
    (b"", ErrorCode.EMPTY_INPUT),
    (b"GIF87a" + bytes(10), ErrorCode.CORRUPT_IMAGE),
    (b"hello, world", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (_png(64, 32)[:30], ErrorCode.CORRUPT_IMAGE),
    (_png(1100, 1000), ErrorCode.IMAGE_TOO_LARGE),
    (b"\x89PNG\r\n\x1a\n" + bytes(5000), ErrorCode.FILE_TOO_LARGE),
    (_png(4000, 20), ErrorCode.IMAGE_TOO_LARGE),  # over the side limit, within the pixel limit
    (_png(600, 4), ErrorCode.IMAGE_TOO_SMALL),
    (b"%PDF-1.4\n", ErrorCode.CORRUPT_PDF),
    (pdf_pages([(200, 200)] * 4), ErrorCode.TOO_MANY_PAGES),
    (pdf_pages([(36_000_000, 0.001)]), ErrorCode.IMAGE_TOO_SMALL),  # a needle page, refused from its box
])
def test_bad_uploads_get_their_code(data: bytes, code: ErrorCode) -> None:
    with pytest.raises(InputError) as info:
        check_upload(data, "x.png", limits=LIMITS)
    assert info.value.code == code


def test_good_uploads_pass_with_their_media_type() -> None:
    assert check_upload(_png(100, 100), None, limits=LIMITS) == "image/png"
    assert check_upload(pdf_pages([(200, 300)] * 3), None, limits=LIMITS) == "application/pdf"


def test_queue_gate_refuses_once_the_limit_waits(tmp_path: Path) -> None:
    db = get_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(db)
    store = JobStore(db, tmp_path / "uploads")
    refused = []
    gate = QueueGate(store, 2, on_refuse=lambda: refused.append(1))
    for i in range(2):
        gate.check()
        store.create(_png(10 + i, 10), filename=None, content_type="image/png", idempotency_key=None)
        gate.created()
    with pytest.raises(ServiceError) as info:
        gate.check()
    assert info.value.code == ErrorCode.TOO_MANY_REQUESTS and info.value.retry_after == 30
    assert refused == [1]
    fresh = QueueGate(store, 2)  # a new gate reads the count from the database
    with pytest.raises(ServiceError):
        fresh.check()
    db.dispose()


def test_queue_retry_after_follows_the_measured_drain_rate(tmp_path: Path) -> None:
    db = get_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(db)
    store = JobStore(db, tmp_path / "uploads")
    for i in range(3):
        store.create(_png(10 + i, 10), filename=None, content_type="image/png", idempotency_key=None)
    gate = QueueGate(store, 2, mean_job_s=lambda: 12.5, workers=1)  # 12.5 s a job, measured
    with pytest.raises(ServiceError) as info:
        gate.check()
    assert info.value.retry_after == 25.0  # two jobs must finish to make room
    two = QueueGate(store, 2, mean_job_s=lambda: 12.5, workers=2)
    with pytest.raises(ServiceError) as info:
        two.check()
    assert info.value.retry_after == 12.5  # two workers drain twice as fast
    idle = QueueGate(store, 2, mean_job_s=lambda: 0.0)  # nothing measured yet
    with pytest.raises(ServiceError) as info:
        idle.check()
    assert info.value.retry_after == 30
    db.dispose()
