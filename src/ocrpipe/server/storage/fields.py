"""The field-results table: one row per field read from a printout (migration 0003_template_fields)."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ocrpipe.server.storage.db import Base


class FieldRow(Base):
    """One extracted field of one job (``value`` is the canonical text form; ``valid`` false = needs review)."""

    __tablename__ = "template_fields"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("ocr_jobs.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(128))
    device: Mapped[str | None] = mapped_column(String(128), nullable=True)
    exam_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    field: Mapped[str] = mapped_column(String(128))
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(32), nullable=True)
    valid: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[float] = mapped_column(Float)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_template_fields_job", "job_id"),)
