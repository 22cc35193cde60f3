"""API keys, the audit log, and the owning tenant of each job.

Revision ID: 0002_security
Revises: 0001_ocr_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_security"
down_revision = "0001_ocr_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_limit_per_min", sa.Float, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("key_name", sa.String(64), nullable=True),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("transport", sa.String(8), nullable=False, server_default="http"),
        sa.Column("status", sa.Integer, nullable=True),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    op.create_index("ix_audit_log_job_id", "audit_log", ["job_id"])
    with op.batch_alter_table("ocr_jobs") as batch:
        batch.add_column(sa.Column("tenant", sa.String(64), nullable=True))
        batch.add_column(sa.Column("submitted_by", sa.String(64), nullable=True))
        batch.create_index("ix_ocr_jobs_tenant_created", ["tenant", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("ocr_jobs") as batch:
        batch.drop_index("ix_ocr_jobs_tenant_created")
        batch.drop_column("submitted_by")
        batch.drop_column("tenant")
    op.drop_index("ix_audit_log_job_id", table_name="audit_log")
    op.drop_index("ix_audit_log_ts", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
