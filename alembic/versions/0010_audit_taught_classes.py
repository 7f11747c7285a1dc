"""Audit findings (image and dataset problems) and classes taught from a few examples.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name="fk_audit_findings_image_id_images",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name="fk_audit_findings_record_id_records",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_audit_findings_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_findings"),
    )
    op.create_index("ix_audit_findings_kind", "audit_findings", ["kind"])
    op.create_index("ix_audit_findings_image_id", "audit_findings", ["image_id"])
    op.create_table(
        "taught_classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=1000), nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_taught_classes"),
        sa.UniqueConstraint("uri", name="uq_taught_classes_uri"),
    )


def downgrade() -> None:
    op.drop_table("taught_classes")
    op.drop_index("ix_audit_findings_image_id", table_name="audit_findings")
    op.drop_index("ix_audit_findings_kind", table_name="audit_findings")
    op.drop_table("audit_findings")
