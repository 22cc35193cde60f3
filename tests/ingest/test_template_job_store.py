"""The job store under template jobs, on SQLite and PostgreSQL: migration 0004 keeps existing rows, runners
claim only their own kind, field rows are written only with the job's completion, and deleting a job
(DELETE, retention sweep, or a plain SQL delete through the foreign key) removes its field rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from testsupport.images import png

from ocrpipe.server.scheduling.template_jobs import value_text
from ocrpipe.server.storage.db import current_revision, get_engine, migrate
from ocrpipe.server.storage.fields import FieldRow
from ocrpipe.server.storage.jobs import JobStore
from ocrpipe.server.storage.models import Job, JobKind
from ocrpipe.server.storage.retention import delete_job


def _store(db_url: str, tmp_path: Path) -> JobStore:
    engine = get_engine(db_url)
    migrate(engine)
    return JobStore(engine, tmp_path / "uploads")


def _row(job_id: str, name: str = "r_sph", value: str = "-1.25") -> FieldRow:
    return FieldRow(job_id=job_id, template="ark_v1", device="ARK-530", exam_id="E1", field=name, value=value,
                    unit="D", valid=True, confidence=0.99, raw=value)


def _count_rows(store: JobStore, job_id: str) -> int:
    with store.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(FieldRow).where(FieldRow.job_id == job_id)) or 0)


def test_value_text_is_canonical() -> None:
    assert [value_text(v) for v in (-1.25, 15.0, 100.0, 0.5, "2024-05-01", None)] == \
        ["-1.25", "15", "100", "0.5", "2024-05-01", None]


def test_migration_0004_keeps_jobs_and_field_rows(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0003_template_fields")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ocr_jobs (id, status, created_at, attempts, size_bytes, sha256) "
                          "VALUES ('a' || hex(randomblob(15)), 'succeeded', CURRENT_TIMESTAMP, 1, 1, 'x')"))
        job_id = conn.execute(text("SELECT id FROM ocr_jobs")).scalar_one()
        conn.execute(text("INSERT INTO template_fields (job_id, template, field, valid, confidence) "
                          "VALUES (:j, 'ark_v1', 'r_sph', 1, 0.9)"), {"j": job_id})
    migrate(engine)
    assert current_revision(engine) == "0004_job_kind"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM ocr_jobs")).scalar_one() == "ocr"
        assert conn.execute(text("SELECT count(*) FROM template_fields")).scalar_one() == 1
    migrate(engine, "0003_template_fields")  # and back: the rows survive the downgrade too
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM template_fields")).scalar_one() == 1
    engine.dispose()


def test_runners_claim_only_their_kind(db_url: str, tmp_path: Path) -> None:
    store = _store(db_url, tmp_path)
    ocr, _ = store.create(png(), filename="a.png", content_type="image/png")
    tpl, _ = store.create(png(65, 32), filename="b.png", content_type="image/png",
                          kind=JobKind.TEMPLATE.value, device="ARK-530", exam_id="E7")
    claimed = store.claim("w:1:x", 30, kinds=[JobKind.TEMPLATE.value])
    assert claimed is not None and claimed.id == tpl.id
    assert (claimed.kind, claimed.device, claimed.exam_id) == ("template", "ARK-530", "E7")
    assert store.claim("w:1:x", 30, kinds=[JobKind.TEMPLATE.value]) is None
    other = store.claim("w:1:y", 30, kinds=[JobKind.OCR.value])
    assert other is not None and other.id == ocr.id
    store.engine.dispose()


def test_field_rows_are_written_only_with_the_completion(db_url: str, tmp_path: Path) -> None:
    store = _store(db_url, tmp_path)
    job, _ = store.create(png(), filename="a.png", content_type="image/png", kind=JobKind.TEMPLATE.value)
    first = store.claim("w:1:a", 0.01, kinds=["template"])
    assert first is not None
    time.sleep(0.05)  # the lease lapses: another worker takes the job over
    second = store.claim("w:1:b", 30, kinds=["template"])
    assert second is not None and second.id == job.id and second.attempts == 2
    assert not store.succeed(job.id, "w:1:a", {"mode": "template"}, 1.0, rows=[_row(job.id)], pages=1)
    assert _count_rows(store, job.id) == 0  # the stale worker wrote nothing
    rows = [_row(job.id, "r_sph"), _row(job.id, "r_cyl", "-0.5")]
    assert store.succeed(job.id, "w:1:b", {"mode": "template"}, 1.0, rows=rows, pages=1)
    assert _count_rows(store, job.id) == 2
    assert store.get(job.id) is not None and store.get(job.id).status == "succeeded"  # type: ignore[union-attr]
    store.engine.dispose()


def _finished_with_rows(store: JobStore) -> str:
    job, _ = store.create(png(), filename="a.png", content_type="image/png", kind=JobKind.TEMPLATE.value,
                          tenant="clinic-a")
    claimed = store.claim("w:1:a", 30, kinds=["template"])
    assert claimed is not None and claimed.id == job.id
    assert store.succeed(job.id, "w:1:a", {"mode": "template"}, 1.0, rows=[_row(job.id), _row(job.id, "x")])
    assert _count_rows(store, job.id) == 2
    return job.id


def test_delete_sweep_and_foreign_key_remove_field_rows(db_url: str, tmp_path: Path) -> None:
    store = _store(db_url, tmp_path)
    deleted = _finished_with_rows(store)
    assert delete_job(store.sessions, deleted, "clinic-b") is None  # another tenant: as if missing
    counts = delete_job(store.sessions, deleted, "clinic-a")
    assert counts is not None and counts["template_fields"] == 2 and counts["ocr_jobs"] == 1
    assert _count_rows(store, deleted) == 0

    swept = _finished_with_rows(store)
    with store.sessions.begin() as s:  # finished long ago
        s.get(Job, swept).finished_at = s.get(Job, swept).created_at - timedelta(days=30)  # type: ignore[union-attr]
    assert store.sweep(timedelta(days=7)) == 1
    assert _count_rows(store, swept) == 0 and store.get(swept) is None

    cascaded = _finished_with_rows(store)  # ON DELETE CASCADE holds on both back ends (SQLite: pragma)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM ocr_jobs WHERE id = :j"), {"j": cascaded})
    assert _count_rows(store, cascaded) == 0
    store.engine.dispose()


def test_finished_pages_by_finish_time(db_url: str, tmp_path: Path) -> None:
    store = _store(db_url, tmp_path)
    ids = [_finished_with_rows(store) for _ in range(3)]
    epoch = (datetime.fromtimestamp(0, UTC), "")
    page = store.finished(after=epoch, tenant="clinic-a", kinds=["template"], limit=2)
    assert [j.id for j in page] == ids[:2]
    rest = store.finished(after=(page[-1].finished_at, page[-1].id), tenant="clinic-a", kinds=["template"])
    assert [j.id for j in rest] == ids[2:]
    assert store.finished(after=epoch, tenant="clinic-b") == []
    assert store.existing(ids + ["f" * 32], "clinic-a") == set(ids)
    assert store.existing(ids, "clinic-b") == set()
    store.engine.dispose()
