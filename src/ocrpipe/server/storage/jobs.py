"""The job store: durable uploads + job rows, safe claiming by several workers, results, retention.

Claiming is race-free on both back ends: PostgreSQL uses ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite
(one writer at a time) uses a conditional ``UPDATE ... WHERE status = 'queued'`` and checks the row
count. A claimed job carries a lease that its worker renews; a job whose lease lapsed (its worker died)
is claimed again, and at start-up jobs left ``running`` by a dead process on this host are re-queued.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ocrpipe.errors import ErrorCode, OcrError
from ocrpipe.server.storage.db import Base, get_sessionmaker
from ocrpipe.server.storage.models import TERMINAL, Job, JobKind, JobStatus
from ocrpipe.server.storage.retention import purge_job_rows, remove_upload, scrub_sqlite


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they are UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def worker_identity() -> str:
    """``host:pid:random`` — lets start-up recovery tell this host's dead processes apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class JobView:
    """A job as the API shows it (no result body, no upload path)."""

    id: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    filename: str | None
    size_bytes: int
    pages: int | None
    duration_ms: float | None
    error_stage: str | None
    error_code: str | None
    error_message: str | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id, status=job.status, created_at=as_utc(job.created_at),  # type: ignore[arg-type]
            started_at=as_utc(job.started_at), finished_at=as_utc(job.finished_at), attempts=job.attempts,
            filename=job.filename, size_bytes=job.size_bytes, pages=job.pages, duration_ms=job.duration_ms,
            error_stage=job.error_stage, error_code=job.error_code, error_message=job.error_message,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "status": self.status, "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at),
            "attempts": self.attempts, "filename": self.filename, "size_bytes": self.size_bytes,
            "pages": self.pages,
            "duration_ms": round(self.duration_ms, 1) if self.duration_ms is not None else None,
        }
        if self.status == JobStatus.FAILED:
            out["error"] = {"code": self.error_code, "stage": self.error_stage, "message": self.error_message}
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class Claimed:
    """What a worker needs to run a job."""

    id: str
    upload_path: str
    filename: str | None
    attempts: int
    kind: str = JobKind.OCR.value
    device: str | None = None
    exam_id: str | None = None


STORAGE_RETRY_S = 60.0
"""``Retry-After`` of a storage refusal: space comes back when an operator (or retention) frees it."""


def storage_full(message: str) -> OcrError:
    """The refusal of a write that found no room (507 ``storage_full`` with ``Retry-After``)."""
    return OcrError(ErrorCode.STORAGE_FULL, f"{message}; retry later", retry_after=STORAGE_RETRY_S)


def is_disk_full(exc: OperationalError) -> bool:
    """Whether a database error means the disk is full: SQLite's "database or disk is full", PostgreSQL's
    SQLSTATE 531xx (disk_full 53100), or ENOSPC's text."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate and str(sqlstate).startswith("531"):
        return True
    text = str(orig).lower()
    return "disk is full" in text or "no space left" in text


def remove_temp_files(upload_dir: Path) -> int:
    """Delete upload temp files a crash or a full disk left behind (never acknowledged); returns how many."""
    removed = 0
    for tmp in upload_dir.glob("*/*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def free_bytes(path: Path) -> int:
    """Bytes available to this process on the file system holding ``path``."""
    return shutil.disk_usage(path).free


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different upload."""


class JobStore:
    """All job persistence; every method opens and commits its own short transaction."""

    def __init__(self, engine: Engine, upload_dir: Path) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = get_sessionmaker(engine)
        self.upload_dir = upload_dir
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.postgres = engine.dialect.name == "postgresql"
        self.removed_temp_files = remove_temp_files(upload_dir)

    # ---- create ------------------------------------------------------------------------------------

    def create(self, data: bytes, *, filename: str | None, content_type: str | None,
               idempotency_key: str | None = None, tenant: str | None = None,
               submitted_by: str | None = None, kind: str = JobKind.OCR.value, device: str | None = None,
               exam_id: str | None = None) -> tuple[JobView, bool]:
        """Store ``data`` durably (fsync'd file, committed row); returns (job, created).

        With an ``idempotency_key`` already used for the same bytes, returns that job and ``False``.
        ``kind`` decides which runner takes the job (see :meth:`claim`).
        """
        digest = hashlib.sha256(data).hexdigest()
        if idempotency_key:
            existing = self._by_key(idempotency_key)
            if existing is not None:
                return self._same_upload(existing, digest), False
        job_id = uuid.uuid4().hex
        path = self._write_upload(job_id, data)  # storage_full when there is no room: nothing acknowledged
        job = Job(id=job_id, status=JobStatus.QUEUED.value, created_at=utcnow(), attempts=0,
                  filename=_no_nul(filename)[:255] or None, content_type=_no_nul(content_type)[:128] or None,
                  size_bytes=len(data), sha256=digest, upload_path=str(path), idempotency_key=idempotency_key,
                  tenant=tenant, submitted_by=submitted_by, kind=JobKind(kind).value,
                  device=_no_nul(device)[:128] or None, exam_id=_no_nul(exam_id)[:128] or None)
        try:
            with self.sessions.begin() as s:
                s.add(job)
        except OperationalError as exc:
            path.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise storage_full("the database has no room for the job row") from exc
            raise
        except IntegrityError:
            path.unlink(missing_ok=True)
            existing = self._by_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return self._same_upload(existing, digest), False
        return JobView.of(job), True

    def _by_key(self, key: str) -> Job | None:
        with self.sessions() as s:
            return s.scalars(select(Job).where(Job.idempotency_key == key)).first()

    @staticmethod
    def _same_upload(job: Job, digest: str) -> JobView:
        if job.sha256 != digest:
            raise IdempotencyConflict(f"Idempotency-Key was already used for job {job.id} with other content")
        return JobView.of(job)

    def _write_upload(self, job_id: str, data: bytes) -> Path:
        sub = self.upload_dir / job_id[:2]
        sub.mkdir(parents=True, exist_ok=True)
        final = sub / f"{job_id}.bin"
        tmp = sub / f"{job_id}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise storage_full(f"the data directory has no room for a {len(data)}-byte upload") from exc
            raise
        dir_fd = os.open(sub, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    # ---- claim / lease -----------------------------------------------------------------------------

    def claim(self, worker: str, lease_s: float, kinds: Iterable[str] | None = None) -> Claimed | None:
        """Atomically take the oldest queued job (or one whose lease lapsed) of one of ``kinds`` (any kind
        when None); None when there is none."""
        now = utcnow()
        claimable = or_(Job.status == JobStatus.QUEUED.value,
                        and_(Job.status == JobStatus.RUNNING.value, Job.lease_until < now))
        if kinds is not None:
            claimable = and_(Job.kind.in_([JobKind(k).value for k in kinds]), claimable)
        values = dict(status=JobStatus.RUNNING.value, claimed_by=worker, started_at=now,
                      lease_until=now + timedelta(seconds=lease_s), attempts=Job.attempts + 1)
        with self.sessions.begin() as s:
            if self.postgres:
                row = s.execute(select(Job.id).where(claimable).order_by(Job.created_at).limit(1)
                                .with_for_update(skip_locked=True)).first()
                if row is None:
                    return None
                s.execute(update(Job).where(Job.id == row.id).values(**values))
                job_id = row.id
            else:
                job_id = self._claim_sqlite(s, claimable, values)
                if job_id is None:
                    return None
            job = s.get(Job, job_id)
            assert job is not None
            return Claimed(id=job.id, upload_path=job.upload_path or "", filename=job.filename,
                           attempts=job.attempts, kind=job.kind, device=job.device, exam_id=job.exam_id)

    @staticmethod
    def _claim_sqlite(s: Session, claimable: Any, values: dict[str, Any]) -> str | None:
        for _ in range(5):
            row = s.execute(select(Job.id, Job.status, Job.attempts).where(claimable)
                            .order_by(Job.created_at).limit(1)).first()
            if row is None:
                return None
            res = s.execute(update(Job).where(Job.id == row.id, Job.status == row.status,
                                              Job.attempts == row.attempts).values(**values))
            if _rowcount(res) == 1:
                return row.id
        return None

    def renew(self, job_id: str, worker: str, lease_s: float) -> bool:
        """Extend the lease; False when the job is no longer ours."""
        with self.sessions.begin() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.claimed_by == worker,
                                              Job.status == JobStatus.RUNNING.value)
                            .values(lease_until=utcnow() + timedelta(seconds=lease_s)))
            return _rowcount(res) == 1

    def release(self, job_id: str, worker: str) -> bool:
        """Give a running job back to the queue (this process is shutting down); True if it was ours."""
        with self.sessions.begin() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.claimed_by == worker,
                                              Job.status == JobStatus.RUNNING.value)
                            .values(status=JobStatus.QUEUED.value, claimed_by=None, lease_until=None,
                                    attempts=Job.attempts - 1))
            return _rowcount(res) == 1

    def requeue_dead_local(self) -> int:
        """Re-queue jobs left running by processes of this host that no longer exist."""
        host = socket.gethostname()
        with self.sessions.begin() as s:
            running = select(Job.id, Job.claimed_by).where(Job.status == JobStatus.RUNNING.value)
            rows = s.execute(running).all()
            dead = [r.id for r in rows if _dead_local(r.claimed_by, host)]
            if dead:
                s.execute(update(Job).where(Job.id.in_(dead), Job.status == JobStatus.RUNNING.value)
                          .values(status=JobStatus.QUEUED.value, claimed_by=None, lease_until=None))
            return len(dead)

    # ---- finish ------------------------------------------------------------------------------------

    def succeed(self, job_id: str, worker: str, result: dict[str, Any], duration_ms: float, *,
                rows: Sequence[Base] = (), pages: int | None = None) -> bool:
        """Mark the job succeeded with ``result``; ``rows`` derived from it (e.g. template field rows) are
        inserted in the same transaction, and only when the job is still ours (else nothing is written)."""
        body = json.dumps(result, ensure_ascii=False)
        return self._finish(job_id, worker, rows, status=JobStatus.SUCCEEDED.value, result_json=body,
                            pages=len(result.get("pages", [])) if pages is None else pages,
                            duration_ms=duration_ms)

    def fail(self, job_id: str, worker: str, *, stage: str, code: str, message: str,
             duration_ms: float) -> bool:
        return self._finish(job_id, worker, status=JobStatus.FAILED.value, error_stage=stage, error_code=code,
                            error_message=message[:2000], duration_ms=duration_ms)

    def _finish(self, job_id: str, worker: str, rows: Sequence[Base] = (), **values: Any) -> bool:
        with self.sessions.begin() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.claimed_by == worker,
                                              Job.status == JobStatus.RUNNING.value)
                            .values(finished_at=utcnow(), lease_until=None, **values))
            if _rowcount(res) != 1:
                return False
            s.add_all(rows)
            return True

    # ---- read --------------------------------------------------------------------------------------

    # ``tenant``: when given, jobs of other tenants read as missing (see ocrpipe.server.security.auth).

    @staticmethod
    def _visible(job: Job | None, tenant: str | None) -> Job | None:
        return job if job is not None and (tenant is None or job.tenant == tenant) else None

    def get(self, job_id: str, tenant: str | None = None) -> JobView | None:
        with self.sessions() as s:
            job = self._visible(s.get(Job, job_id), tenant)
            return JobView.of(job) if job else None

    def result(self, job_id: str, tenant: str | None = None) -> tuple[JobView, dict[str, Any] | None] | None:
        with self.sessions() as s:
            job = self._visible(s.get(Job, job_id), tenant)
            if job is None:
                return None
            return JobView.of(job), (json.loads(job.result_json) if job.result_json else None)

    def job(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job row (detached; read-only use), or None when missing or another tenant's."""
        with self.sessions() as s:
            return self._visible(s.get(Job, job_id), tenant)

    def fields(self, job_id: str, tenant: str | None = None) -> list[dict[str, Any]] | None:
        """The field rows of a template job in template order (None when the job is missing or another
        tenant's; empty until it succeeds, or when its page was read by the general pipeline)."""
        from ocrpipe.server.storage.fields import FieldRow

        with self.sessions() as s:
            if self._visible(s.get(Job, job_id), tenant) is None:
                return None
            rows = s.scalars(select(FieldRow).where(FieldRow.job_id == job_id).order_by(FieldRow.id)).all()
            return [{"template": r.template, "device": r.device, "exam_id": r.exam_id, "field": r.field,
                     "value": r.value, "unit": r.unit, "valid": r.valid, "confidence": r.confidence, "raw": r.raw}
                    for r in rows]

    def finished(self, *, after: tuple[datetime, str], until: datetime | None = None, tenant: str | None = None,
                 kinds: Iterable[str] | None = None, job_ids: Iterable[str] | None = None,
                 limit: int = 100) -> list[Job]:
        """Finished jobs in ``(finished_at, id)`` order strictly after the ``after`` cursor (and finished at
        or before ``until``): keyset pagination for streaming results as they finish."""
        ts, last_id = after
        q = (select(Job).where(Job.status.in_([t.value for t in TERMINAL]),
                               or_(Job.finished_at > ts, and_(Job.finished_at == ts, Job.id > last_id)))
             .order_by(Job.finished_at, Job.id).limit(limit))
        if until is not None:
            q = q.where(Job.finished_at <= until)
        if tenant is not None:
            q = q.where(Job.tenant == tenant)
        if kinds is not None:
            q = q.where(Job.kind.in_(list(kinds)))
        if job_ids is not None:
            q = q.where(Job.id.in_(list(job_ids)))
        with self.sessions() as s:
            return list(s.scalars(q))

    def existing(self, job_ids: Iterable[str], tenant: str | None = None) -> set[str]:
        """Which of ``job_ids`` exist and are visible to ``tenant``."""
        ids = list(job_ids)
        if not ids:
            return set()
        q = select(Job.id).where(Job.id.in_(ids))
        if tenant is not None:
            q = q.where(Job.tenant == tenant)
        with self.sessions() as s:
            return set(s.scalars(q))

    def upload_of(self, job_id: str, tenant: str | None = None) -> tuple[Path, str | None] | None:
        with self.sessions() as s:
            job = self._visible(s.get(Job, job_id), tenant)
            if job is None or not job.upload_path:
                return None
            return Path(job.upload_path), job.filename

    def list(self, *, status: str | None = None, since: datetime | None = None,
             limit: int = 50, tenant: str | None = None) -> list[JobView]:
        q = select(Job).order_by(Job.created_at.desc()).limit(limit)
        if tenant is not None:
            q = q.where(Job.tenant == tenant)
        if status:
            q = q.where(Job.status == status)
        if since:
            q = q.where(Job.created_at >= since)
        with self.sessions() as s:
            return [JobView.of(j) for j in s.scalars(q)]

    def count_queued(self) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Job)
                                .where(Job.status == JobStatus.QUEUED.value)) or 0)

    def summary(self, since: datetime) -> dict[str, Any]:
        """Jobs finished since ``since``: counts, success rate, p50/p95 duration (ms)."""
        with self.sessions() as s:
            finished = Job.status.in_([t.value for t in TERMINAL])
            query = select(Job.status, Job.duration_ms).where(Job.finished_at >= since, finished)
            rows = s.execute(query).all()
        durations = sorted(r.duration_ms for r in rows if r.duration_ms is not None)
        ok = sum(1 for r in rows if r.status == JobStatus.SUCCEEDED.value)
        return {
            "jobs": len(rows), "succeeded": ok, "failed": len(rows) - ok,
            "success_rate": (ok / len(rows)) if rows else None,
            "p50_ms": _percentile(durations, 50), "p95_ms": _percentile(durations, 95),
        }

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # ---- retention ---------------------------------------------------------------------------------

    def sweep(self, retention: timedelta) -> int:
        """Delete finished jobs older than ``retention`` and their uploads; returns how many."""
        cutoff = utcnow() - retention
        with self.sessions.begin() as s:
            rows = s.execute(select(Job.id, Job.upload_path).where(
                Job.status.in_([t.value for t in TERMINAL]), Job.finished_at < cutoff)).all()
            if not rows:
                return 0
            purge_job_rows(s, [r.id for r in rows])  # the job rows and rows derived from them (fields)
        for r in rows:
            remove_upload(r.upload_path)
        scrub_sqlite(self.engine)
        return len(rows)


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (``CursorResult.rowcount``)."""
    return int(result.rowcount)


def _no_nul(value: str | None) -> str:
    """Client-supplied names without NUL characters (PostgreSQL text cannot store them)."""
    return (value or "").replace("\x00", "")


def _dead_local(claimed_by: str | None, host: str) -> bool:
    if not claimed_by:
        return True
    parts = claimed_by.split(":")
    if len(parts) < 2 or parts[0] != host:
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    # Called at start-up, before this process claims anything: a job "held" by our own pid was claimed
    # by a dead predecessor whose pid got reused.
    return int(parts[1]) == os.getpid()


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)
