"""Near-duplicate and identical images found across the catalog's records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duplicate_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_number", sa.Integer(), nullable=False),
        sa.Column("image_a", sa.Integer(), nullable=False),
        sa.Column("image_b", sa.Integer(), nullable=False),
        sa.Column("record_a", sa.Integer(), nullable=False),
        sa.Column("record_b", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("embedder", sa.String(length=200), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_a"], ["images.id"], name="fk_duplicate_pairs_image_a_images", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["image_b"], ["images.id"], name="fk_duplicate_pairs_image_b_images", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["record_a"],
            ["records.id"],
            name="fk_duplicate_pairs_record_a_records",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_b"],
            ["records.id"],
            name="fk_duplicate_pairs_record_b_records",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_duplicate_pairs_run_id_runs"),
        sa.PrimaryKeyConstraint("id", name="pk_duplicate_pairs"),
    )
    op.create_index("ix_duplicate_pairs_record_a", "duplicate_pairs", ["record_a"])
    op.create_index("ix_duplicate_pairs_record_b", "duplicate_pairs", ["record_b"])


def downgrade() -> None:
    op.drop_index("ix_duplicate_pairs_record_b", table_name="duplicate_pairs")
    op.drop_index("ix_duplicate_pairs_record_a", table_name="duplicate_pairs")
    op.drop_table("duplicate_pairs")
