"""Job kinds: ``ocr`` (REST OCR jobs) and ``template`` (gRPC printout ingestion), with device and exam id.

Plain ``ADD COLUMN`` (no batch "move and copy"): on SQLite, recreating ``ocr_jobs`` with foreign keys on
would cascade-delete every ``template_fields`` row of the existing jobs.

Revision ID: 0004_job_kind
Revises: 0003_template_fields
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_kind"
down_revision = "0003_template_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ocr_jobs", sa.Column("kind", sa.String(16), nullable=False, server_default="ocr"))
    op.add_column("ocr_jobs", sa.Column("device", sa.String(128), nullable=True))
    op.add_column("ocr_jobs", sa.Column("exam_id", sa.String(128), nullable=True))
    op.create_index("ix_ocr_jobs_kind_status_created", "ocr_jobs", ["kind", "status", "created_at"])
    op.create_index("ix_ocr_jobs_kind_finished", "ocr_jobs", ["kind", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_ocr_jobs_kind_finished", table_name="ocr_jobs")
    op.drop_index("ix_ocr_jobs_kind_status_created", table_name="ocr_jobs")
    for column in ("exam_id", "device", "kind"):  # plain DROP COLUMN (SQLite >= 3.35), for the same reason
        op.drop_column("ocr_jobs", column)
