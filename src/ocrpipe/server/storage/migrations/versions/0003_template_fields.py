"""Field results of template mode (one row per field), written with the job's completion.

Revision ID: 0003_template_fields
Revises: 0002_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_template_fields"
down_revision = "0002_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_fields",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("ocr_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("device", sa.String(128), nullable=True),
        sa.Column("exam_id", sa.String(128), nullable=True),
        sa.Column("field", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("valid", sa.Boolean, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("raw", sa.Text, nullable=True),
    )
    op.create_index("ix_template_fields_job", "template_fields", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_template_fields_job", table_name="template_fields")
    op.drop_table("template_fields")
