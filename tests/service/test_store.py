"""The job store on SQLite and PostgreSQL: migrations, durable create, idempotency, race-free claiming,
leases, restart recovery and retention."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, update

from ocrpipe.server.storage.db import alembic_config, current_revision, get_engine, migrate
from ocrpipe.server.storage.jobs import IdempotencyConflict, JobStore, utcnow
from ocrpipe.server.storage.models import Job


@pytest.fixture
def store(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = get_engine(db_url)
    migrate(engine)
    yield JobStore(engine, tmp_path / "uploads")
    with engine.begin() as conn:
        conn.execute(Job.__table__.delete())
    engine.dispose()


def test_migrations_create_the_table_and_are_idempotent(store: JobStore) -> None:
    assert "ocr_jobs" in inspect(store.engine).get_table_names()
    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()  # later areas add revisions
    assert current_revision(store.engine) == head
    migrate(store.engine)  # second start-up: nothing to do, no error
    assert current_revision(store.engine) == head


def test_create_writes_the_upload_before_returning(store: JobStore) -> None:
    job, created = store.create(b"%PDF-1.4 data", filename="a.pdf", content_type="application/pdf")
    assert created and job.status == "queued"
    path, name = store.upload_of(job.id)  # type: ignore[misc]
    assert path.read_bytes() == b"%PDF-1.4 data" and name == "a.pdf"
    assert store.get(job.id) == job


def test_idempotency_key_returns_the_same_job(store: JobStore) -> None:
    first, created1 = store.create(b"abc", filename="x.png", content_type=None, idempotency_key="k-1")
    again, created2 = store.create(b"abc", filename="x.png", content_type=None, idempotency_key="k-1")
    assert created1 and not created2 and again.id == first.id
    with pytest.raises(IdempotencyConflict):
        store.create(b"other bytes", filename="x.png", content_type=None, idempotency_key="k-1")
    assert len(store.list()) == 1


def test_concurrent_claims_never_hand_out_a_job_twice(store: JobStore) -> None:
    ids = {store.create(f"job {i}".encode(), filename=None, content_type=None)[0].id for i in range(30)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        while True:
            job = store.claim(f"w{n}", lease_s=60)
            if job is None:
                return
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every job exactly once
    assert store.claim("late", lease_s=60) is None


def test_lapsed_lease_is_claimed_again_and_old_worker_cannot_finish(store: JobStore) -> None:
    job, _ = store.create(b"img", filename=None, content_type=None)
    first = store.claim("dead-worker", lease_s=60)
    assert first is not None and first.attempts == 1
    with store.sessions.begin() as s:  # the lease lapses (the worker stopped renewing it)
        s.execute(update(Job).where(Job.id == job.id).values(lease_until=utcnow() - timedelta(seconds=1)))
    second = store.claim("new-worker", lease_s=60)
    assert second is not None and second.id == job.id and second.attempts == 2
    assert not store.succeed(job.id, "dead-worker", {"pages": []}, 1.0)
    assert store.succeed(job.id, "new-worker", {"pages": [{}]}, 5.0)
    view, result = store.result(job.id)  # type: ignore[misc]
    assert view.status == "succeeded" and view.pages == 1 and result == {"pages": [{}]}


def test_jobs_of_a_dead_local_process_are_requeued(store: JobStore) -> None:
    import socket

    job, _ = store.create(b"img", filename=None, content_type=None)
    assert store.claim(f"{socket.gethostname()}:999999999:abc", lease_s=600) is not None
    other_host = store.create(b"img2", filename=None, content_type=None)[0]
    assert store.claim("elsewhere:1:abc", lease_s=600) is not None
    assert store.requeue_dead_local() == 1
    assert store.get(job.id).status == "queued"  # type: ignore[union-attr]
    assert store.get(other_host.id).status == "running"  # type: ignore[union-attr]


def test_failure_is_recorded_with_stage_and_code(store: JobStore) -> None:
    job, _ = store.create(b"img", filename=None, content_type=None)
    store.claim("w", lease_s=60)
    assert store.fail(job.id, "w", stage="decode", code="corrupt_image", message="bad", duration_ms=3.0)
    view = store.get(job.id)
    assert view is not None and view.to_dict()["error"] == {"code": "corrupt_image", "stage": "decode",
                                                             "message": "bad"}


def test_list_filters_and_summary(store: JobStore) -> None:
    a, _ = store.create(b"a", filename=None, content_type=None)
    b, _ = store.create(b"b", filename=None, content_type=None)
    store.create(b"c", filename=None, content_type=None)
    for job, ok, ms in ((a, True, 100.0), (b, False, 300.0)):
        store.claim("w", lease_s=60)
        if ok:
            store.succeed(job.id, "w", {"pages": []}, ms)
        else:
            store.fail(job.id, "w", stage="detect", code="engine_failure", message="x", duration_ms=ms)
    assert [j.id for j in store.list(status="succeeded")] == [a.id]
    assert len(store.list(status="queued")) == 1
    assert store.list(since=utcnow() + timedelta(minutes=1)) == []
    s = store.summary(utcnow() - timedelta(hours=1))
    assert s["jobs"] == 2 and s["succeeded"] == 1 and s["success_rate"] == 0.5
    assert s["p50_ms"] == 200.0 and 280.0 <= s["p95_ms"] <= 300.0


def test_sweep_removes_old_finished_jobs_and_their_uploads(store: JobStore) -> None:
    old, _ = store.create(b"old", filename=None, content_type=None)
    store.claim("w", lease_s=60)
    store.succeed(old.id, "w", {"pages": []}, 1.0)
    pending, _ = store.create(b"new", filename=None, content_type=None)
    path = store.upload_of(old.id)[0]  # type: ignore[index]
    with store.sessions.begin() as s:
        s.execute(update(Job).where(Job.id == old.id).values(finished_at=utcnow() - timedelta(days=10)))
    assert store.sweep(timedelta(days=7)) == 1
    assert store.get(old.id) is None and not path.exists()
    assert store.get(pending.id) is not None  # unfinished jobs are never swept


def test_engine_factory_for_sqlite_creates_the_folder(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.db'}")
    migrate(engine)
    assert (tmp_path / "deep" / "dir" / "x.db").exists()
    engine.dispose()
