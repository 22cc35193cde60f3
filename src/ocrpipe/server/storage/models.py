"""ORM models of the job store."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ocrpipe.server.storage.db import Base


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobKind(enum.StrEnum):
    """Which runner takes a job: the REST OCR runner or the template (printout ingestion) runner."""

    OCR = "ocr"
    TEMPLATE = "template"


class Job(Base):
    """One asynchronous OCR job: the upload's location, its state and (when done) its result."""

    __tablename__ = "ocr_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    upload_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Owner of the job (the submitting API key's tenant); only that tenant can read it (0002_security)."""
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default=JobKind.OCR.value, server_default=JobKind.OCR.value)
    """``ocr`` or ``template`` (0004_job_kind); each runner claims only its own kind."""
    device: Mapped[str | None] = mapped_column(String(128), nullable=True)
    exam_id: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (
        Index("ix_ocr_jobs_status_created", "status", "created_at"),
        Index("ix_ocr_jobs_finished_at", "finished_at"),
        Index("ix_ocr_jobs_tenant_created", "tenant", "created_at"),
        Index("ix_ocr_jobs_kind_status_created", "kind", "status", "created_at"),
        Index("ix_ocr_jobs_kind_finished", "kind", "finished_at"),
    )
